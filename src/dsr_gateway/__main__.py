from dsr_gateway.cli import main

raise SystemExit(main())
