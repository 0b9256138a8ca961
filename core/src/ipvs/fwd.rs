//! Forwarding methods as pure packet transforms: DR, NAT, TUN (IPIP, GUE, GRE).
