from scenewright.cli import main

raise SystemExit(main())
