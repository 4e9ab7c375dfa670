"""Plays the web process for tests/test_upload_sniffing.py, in a fresh interpreter.

    DATABASE_URL=<the test database> python tests/web_upload_probe.py USER COLLECTION_ID FOLDER

Signs in as USER, posts every file in FOLDER to the upload view in one request (middleware,
view, services: what gunicorn runs), then prints one JSON line: the messages the page shows,
and whether this process loaded libmagic or imported any file-type sniffer.
"""

import json
import os
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

import rag_platform.wsgi  # noqa: E402,F401  (started as gunicorn starts it: guard, role "web", Django)

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

SNIFFERS = ("magic", "filetype", "olefile", "unstructured")


def main() -> None:
    user_name, collection_id, folder = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    setup_test_environment()  # the test client's host name and the page context
    client = Client()
    client.force_login(get_user_model().objects.get(username=user_name))
    files = [SimpleUploadedFile(path.name, path.read_bytes()) for path in sorted(folder.iterdir())]
    response = client.post(reverse("ingestion:document_upload", args=[collection_id]), {"files": files}, follow=True)
    maps = Path("/proc/self/maps").read_text()
    print(json.dumps({
        "status": response.status_code,
        "messages": [str(m) for m in response.context["messages"]],
        "libmagic_mapped": "libmagic" in maps,
        "sniffers_imported": sorted(name for name in SNIFFERS if name in sys.modules),
        "pid": os.getpid(),
    }))


if __name__ == "__main__":
    main()
