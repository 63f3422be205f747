"""Communication with subjects: messages through templates, reviews, notice changes, breach notices."""
