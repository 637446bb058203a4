from sistercities.cli import main

main()
