"""Test-environment shim for Python 3.11: NOT part of logconf.

SkyRL 0.4.0 requires Python >= 3.12. Its ``skyrl/tinker/types.py`` puts ``typing.TypedDict``
classes inside pydantic models, which pydantic refuses before Python 3.12 ("Please use
typing_extensions.TypedDict instead of typing.TypedDict on Python < 3.12"). The SkyRL job of
the real tests (``python -m logconf.demo.skyrl``) puts this directory on PYTHONPATH, for its
driver and, through the environment Ray inherits, for every Ray worker, so that SkyRL's modules
import on the Python 3.11 of these machines. Nothing else loads it.
"""

import sys
import typing

if sys.version_info < (3, 12):
    import typing_extensions

    typing.TypedDict = typing_extensions.TypedDict  # type: ignore[misc]
