"""pytest's entry point for cyclegc's plugin (cyclegc.pytest_plugin).

It lives outside the cyclegc package on purpose: on an interpreter cyclegc
does not support, ``import cyclegc`` raises ImportError, and a plugin that
cannot be imported stops pytest from starting at all.  Here the plugin is
simply inactive then, and says why in pytest's header.
"""
try:
    from cyclegc.pytest_plugin import *  # noqa: F401,F403  (the pytest_* hooks)
except ImportError as exc:
    _reason = str(exc)

    def pytest_report_header(config):
        return f"cyclegc: plugin inactive ({_reason})"
