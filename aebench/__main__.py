"""``python -m aebench``: the same as the ``aebench`` command."""

from aebench.cli import main

if __name__ == "__main__":
    main()
