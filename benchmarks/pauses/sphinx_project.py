"""Writes a Sphinx project documenting standard-library modules with autodoc
(a real documentation build over real docstrings), for bench_pauses.py's
sphinx workload.  Usage: sphinx_project.py DIR [N_MODULES]"""
import os
import sys

MODULES = ["argparse", "ast", "asyncio.events", "asyncio.tasks", "base64", "bisect", "calendar",
           "collections", "concurrent.futures", "configparser", "contextlib", "csv", "dataclasses",
           "datetime", "decimal", "difflib", "email.message", "enum", "fractions", "functools",
           "getopt", "gettext", "glob", "gzip", "heapq", "hmac", "html.parser", "http.client",
           "http.server", "imaplib", "inspect", "ipaddress", "json", "logging", "logging.handlers",
           "mailbox", "mimetypes", "numbers", "operator", "optparse", "pathlib", "pickle",
           "pprint", "queue", "random", "re", "sched", "secrets", "selectors", "shlex", "shutil",
           "smtplib", "socketserver", "statistics", "string", "subprocess", "tarfile", "tempfile",
           "textwrap", "threading", "timeit", "tokenize", "traceback", "typing", "unittest.case",
           "urllib.parse", "urllib.request", "uuid", "wave", "weakref", "xml.dom.minidom",
           "zipfile"]


def main():
    root = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else len(MODULES)
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "conf.py"), "w") as f:
        f.write("project = 'stdlib'\nextensions = ['sphinx.ext.autodoc', 'sphinx.ext.viewcode']\n"
                "html_theme = 'basic'\nautodoc_default_options = {'members': True, "
                "'undoc-members': True, 'show-inheritance': True}\n")
    mods = MODULES[:n]
    with open(os.path.join(root, "index.rst"), "w") as f:
        f.write("stdlib\n======\n\n.. toctree::\n   :maxdepth: 1\n\n")
        for m in mods:
            f.write(f"   {m}\n")
    for m in mods:
        with open(os.path.join(root, f"{m}.rst"), "w") as f:
            f.write(f"{m}\n{'=' * len(m)}\n\n.. automodule:: {m}\n")


main()
