from clothes_extractor.cli import main

main()
