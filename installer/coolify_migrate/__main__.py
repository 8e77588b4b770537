from coolify_migrate.cli import main

main()
