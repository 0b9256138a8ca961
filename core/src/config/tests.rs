//! Parser tests over whole configs.
use super::*;
