"""The package layout that pyproject.toml cannot express (all other metadata is there).

The repository keeps the design card's layout: report and teaching notebooks in the top-level
``notebooks/`` and the explorer in the top-level ``widgets/``. Installed, the notebooks live inside
the package (``darkflow/notebooks/``, where :func:`darkflow.report.notebook_path` finds them) and the
explorer is ``darkflow_widgets``: a top-level package named ``widgets`` would collide with other
distributions. tests/test_wheel.py builds the wheel and checks its contents.
"""

from setuptools import find_packages, setup

setup(
    packages=[
        *find_packages(include=["darkflow", "darkflow.*"]),
        "darkflow.notebooks",
        "darkflow.notebooks.teaching",
        "darkflow_widgets",
    ],
    package_dir={"darkflow.notebooks": "notebooks", "darkflow_widgets": "widgets"},
    package_data={
        "darkflow.report": ["templates/**/*"],
        "darkflow.notebooks": ["*.ipynb"],
        "darkflow.notebooks.teaching": ["*.ipynb"],
    },
    include_package_data=False,
)
