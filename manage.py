#!/usr/bin/env python
"""Django's command-line utility for the platform."""

import os
import sys


def main() -> None:
    from rag_platform.privacy import apply_offline_environment

    apply_offline_environment()
    from rag_platform.egress import install_egress_guard

    install_egress_guard()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rag_platform.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
