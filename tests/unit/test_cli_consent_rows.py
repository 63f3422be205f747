"""The import command's row reader gives what csv.DictReader gives (line numbers included)."""

from __future__ import annotations

import csv
import io

from dsr_gateway.cli_consent import _rows

TEXT = 'a,b,c\n1,2,3\n\n4,5\n6,7,8,9,10\n"x\ny",z,w\n,,\n"é ""q""",2,3\n'


def test_rows_equal_dictreader() -> None:
    reference = csv.DictReader(io.StringIO(TEXT))
    expected = [(reference.line_num, row) for row in reference]
    reader = csv.reader(io.StringIO(TEXT))
    header = next(reader)
    assert list(_rows(reader, header)) == expected
    assert [line for line, _ in expected] == [2, 4, 5, 7, 8, 9]
