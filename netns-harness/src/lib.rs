//! Runs scenarios across veth-linked network namespaces (lvsd and Debian's keepalived).
