"""Headless sub-commands of ``workbench``; one module each, registered in ``workbench.cli``."""
