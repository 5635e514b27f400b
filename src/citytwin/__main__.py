from citytwin.cli import main

main()
