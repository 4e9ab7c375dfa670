#!/usr/bin/env python
"""Django's command-line utility for the platform."""

import sys


def main() -> None:
    from rag_platform.process import start

    start(" ".join(["manage.py", *sys.argv[1:2]]))
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
