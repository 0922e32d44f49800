"""darkflow: automated, measurable, auditable dark-frame calibration.

The core imports only numpy, astropy and pandas; numba kernels, holoviews, bokeh, papermill and
ipywidgets are imported by the modules that need them, when they need them.
"""

from darkflow import _moved
from darkflow._version import ALGORITHM_VERSION, __version__
from darkflow.config import Config
from darkflow.exceptions import DarkflowError

__all__ = ["ALGORITHM_VERSION", "Config", "DarkflowError", "__version__"]

_moved.install()
