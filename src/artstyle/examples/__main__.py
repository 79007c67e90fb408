"""``python -m artstyle.examples``: print the folder of the example images (see the package's docstring)."""

from artstyle.examples import DIRECTORY

print(DIRECTORY)
