"""Package list for setuptools (the rest of the metadata is in pyproject.toml).

``resources/`` (icons, default palette, style sheet) lives at the top of the repository
and is installed as ``workbench.resources``; pyproject's ``packages.find`` cannot map a
folder outside the package, so the list is built here.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["workbench*"]), "workbench.resources"],
    package_dir={"workbench.resources": "resources"},
)
