"""prep: turn raw videos and photo folders into dataset trees face-model trainers accept.

Library first: every stage is a module with plain functions (see ARCHITECTURE.md);
``prep.cli`` only parses options and calls them.
"""

__version__ = "0.1.0"
