import datetime

import torch_autoscale

project = 'torch_autoscale'
author = 'torch_autoscale contributors'
copyright = f'{datetime.datetime.now().year}, {author}'
version = release = torch_autoscale.__version__

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.mathjax',
    'sphinx.ext.viewcode',
]
autodoc_member_order = 'bysource'
autodoc_typehints = 'none'
autodoc_default_options = {
    'members': True,
    'show-inheritance': True,
}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_custom_sections = [('Shapes', 'params_style')]
html_theme = 'alabaster'
exclude_patterns = []
napoleon_use_ivar = True
