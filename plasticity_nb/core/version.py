"""The package version, in a module of its own so that provenance.py can read it without importing the
package's __init__ (which imports the runner, which imports provenance.py)."""
__version__ = "0.1.0"
