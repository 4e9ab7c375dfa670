#!/usr/bin/env python
"""Django's command-line utility for the platform."""

import os
import sys


def main() -> None:
    from rag_platform.process.offline import apply_offline_environment

    apply_offline_environment()
    from rag_platform.process.egress import install_egress_guard

    install_egress_guard()
    from rag_platform.process.runtime import set_process_role

    set_process_role(" ".join(["manage.py", *sys.argv[1:2]]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rag_platform.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
