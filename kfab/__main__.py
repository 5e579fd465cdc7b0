from kfab.cli import main

raise SystemExit(main())
