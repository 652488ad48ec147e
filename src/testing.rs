//! Test support: scratch filesystems in loop images (RAII), shared by unit and
//! integration tests. Not part of the stable API.
