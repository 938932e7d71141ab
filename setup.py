"""The wheel's packages, discovered rather than listed: metadata and package data are in pyproject.toml.

Every package under jobsite/ is found, so a new subpackage cannot be left out of the wheel. The top-level
templates/, static/ and translations/ travel inside the package as jobsite.templates, jobsite.static and
jobsite.translations, each with every folder below it (a new language's catalogue included).
"""

from setuptools import find_namespace_packages, find_packages, setup

DATA = {"jobsite.templates": "templates", "jobsite.static": "static", "jobsite.translations": "translations"}

packages = find_packages(include=["jobsite", "jobsite.*"])
for package, folder in DATA.items():
    packages += [package, *(f"{package}.{sub}" for sub in find_namespace_packages(where=folder))]

setup(packages=packages, package_dir=DATA)
