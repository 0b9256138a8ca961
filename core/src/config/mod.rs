//! keepalived.conf: lexer, parser with spans, typed model and diagnostics.
//!
//! SKELETON: the config helper replaces this file.
