//! CLI commands over the header directory: list, query, diff, verify.
