"""Sphinx configuration of the nipype-ward documentation.

Build (the CI command, warnings are errors)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

Nothing here reaches the network: no intersphinx, no remote theme. The workflow
graphs need Graphviz's ``dot`` on the PATH.
"""

import os
import sys
from datetime import date

sys.path.insert(0, os.path.abspath("_ext"))

import nipype_ward  # noqa: E402  (installed, e.g. pip install -e '.[docs]')

# -- Project ------------------------------------------------------------------
project = "nipype-ward"
author = "nipype-ward developers"
copyright = f"{date.today().year}, {author}"
release = nipype_ward.__version__
version = ".".join(release.split(".")[:2])

# -- Extensions ---------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "sphinx.ext.graphviz",
    # NumPy-style docstrings (a napoleon subclass) and, for Nipype interfaces,
    # the inputs and outputs generated from their traits.
    "nipype.sphinxext.apidoc",
    # The ``.. workflow::`` directive that draws a workflow graph (needs dot).
    "nipype.sphinxext.plot_workflow",
    # ``.. argparse::``: the command-line options from the parser itself.
    "sphinxarg.ext",
    # Local (docs/_ext): small fixes of the autodoc output, see its docstring.
    "nipype_ward_docs",
]

templates_path = []
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
root_doc = "index"
# Curly quotes and ellipses, but leave "--" alone (command-line options).
smartquotes_action = "qe"
language = "en"
nitpicky = False

# -- autodoc ------------------------------------------------------------------
autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
}
# The NumPy-style docstrings give the types; annotations would repeat them.
autodoc_typehints = "none"

# -- Docstrings (napoleon settings, read by nipype.sphinxext.apidoc) -----------
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = False
napoleon_use_ivar = True
napoleon_use_rtype = False
napoleon_preprocess_types = False
# Rendered as parameter lists: the fields of a workflow's input and output
# nodes (numpydoc "Inputs"/"Outputs" sections of the init_*_wf docstrings),
# and the trait lists that nipype.sphinxext.apidoc appends to interfaces.
napoleon_custom_sections = [
    ("Inputs", "params_style"),
    ("Outputs", "params_style"),
    ("Mandatory Inputs", "params_style"),
    ("Optional Inputs", "params_style"),
]

# -- Workflow graphs (nipype.sphinxext.plot_workflow) --------------------------
wf_formats = ["png"]
wf_html_show_formats = False
wf_html_show_source_link = False
wf_include_source = False

# -- Graphviz (sphinx.ext.graphviz, the layer diagram) ------------------------
graphviz_output_format = "svg"

# -- HTML ---------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"nipype-ward {release}"
html_static_path = ["_static"]
html_theme_options = {
    "description": "Spatially constrained Ward parcellation of fMRI for Nipype",
    "fixed_sidebar": True,
    "page_width": "1100px",
    "sidebar_width": "240px",
}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}
