//! Failpoints for fault-injection tests.
