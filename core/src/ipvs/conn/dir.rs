//! Which way a packet travels and which part of a protocol's state table it reads
//! (`IP_VS_DIR_*`, shared by the TCP and SCTP tables).

/// Which way a packet travels relative to the connection (`IP_VS_DIR_*`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Direction {
    /// Client to virtual service.
    Input,
    /// Real server back through the director (NAT only).
    Output,
}

/// Which part of a state table a packet reads (`IP_VS_DIR_INPUT`, `_OUTPUT`, `_INPUT_ONLY`;
/// the TCP table's `TCP_DIR_*` offsets / 4).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TableDir {
    /// Input packet on a connection whose replies pass the director (NAT).
    Input,
    /// Reply packet seen by the director (NAT).
    Output,
    /// Input packet on a connection whose replies bypass the director (DR, TUN).
    InputOnly,
}
