"""Tools for spec authors and CI: `specc fmt`, `specc convert`, `specc graph` (one module each)."""
