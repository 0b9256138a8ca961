//! The IPVS sync daemon protocol (version 1 messages).
