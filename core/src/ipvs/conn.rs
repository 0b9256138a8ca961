//! Connection table: the kernel's TCP state tables, timeouts and persistence templates.
