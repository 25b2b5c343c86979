"""Docs-only adjustments of the autodoc output for nipype-ward.

* ``#:`` comments of module constants are plain prose. napoleon (and so
  ``nipype.sphinxext.apidoc``) reads the first line of a data or attribute
  docstring as ``type: description``, so a comment such as ``Memory (GB) of
  the heavy nodes ...: a 2 mm ...`` would be split into a bogus type. The
  original lines are kept aside before the docstring processors run and put
  back after them.
* The ``Alias for field number N`` members that ``typing.NamedTuple`` adds are
  skipped: the class docstrings already describe their fields.
"""

_ORIGINAL = "nipype_ward_docs_original_lines"


def _keep_prose(app, what, name, obj, options, lines):
    if what in ("data", "attribute"):
        app.env.temp_data[_ORIGINAL] = (name, list(lines))


def _restore_prose(app, what, name, obj, options, lines):
    kept = app.env.temp_data.pop(_ORIGINAL, None)
    if what in ("data", "attribute") and kept and kept[0] == name:
        lines[:] = kept[1]


def _skip_namedtuple_fields(app, what, name, obj, skip, options):
    doc = getattr(obj, "__doc__", None) or ""
    if what == "class" and doc.startswith("Alias for field number"):
        return True
    return None


def setup(app):
    # Priorities: lower runs first; the docstring processors use the default 500.
    app.connect("autodoc-process-docstring", _keep_prose, priority=100)
    app.connect("autodoc-process-docstring", _restore_prose, priority=900)
    app.connect("autodoc-skip-member", _skip_namedtuple_fields, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
