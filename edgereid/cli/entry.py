"""`python -m edgereid.cli.entry` runs the CLI without relying on the console script."""
from edgereid.cli import main

if __name__ == "__main__":
    main()
