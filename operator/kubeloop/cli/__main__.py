from kubeloop.cli.main import main

raise SystemExit(main())
