//! Small helpers shared by the attribute enums: fixed-size value parsers that name the attribute
//! in their error, NUL-terminated strings, and nested-attribute lists.

use netlink_packet_core::{
    DecodeError, DefaultNla, Emitable, NLA_F_NESTED, NLA_F_NET_BYTEORDER, Nla, NlaBuffer,
    NlasIterator, Parseable,
};

/// Checks that `value` is exactly `N` bytes and returns them.
pub(crate) fn fixed<const N: usize>(value: &[u8], what: &str) -> Result<[u8; N], DecodeError> {
    <[u8; N]>::try_from(value).map_err(|_| {
        DecodeError::from(format!(
            "invalid {what}: expected {N} bytes, got {}",
            value.len()
        ))
    })
}

pub(crate) fn u8_of(value: &[u8], what: &str) -> Result<u8, DecodeError> {
    Ok(fixed::<1>(value, what)?[0])
}

/// Host-order u16.
pub(crate) fn u16_ne(value: &[u8], what: &str) -> Result<u16, DecodeError> {
    Ok(u16::from_ne_bytes(fixed(value, what)?))
}

/// Network-order u16 (ports).
pub(crate) fn u16_be(value: &[u8], what: &str) -> Result<u16, DecodeError> {
    Ok(u16::from_be_bytes(fixed(value, what)?))
}

/// Host-order u32.
pub(crate) fn u32_ne(value: &[u8], what: &str) -> Result<u32, DecodeError> {
    Ok(u32::from_ne_bytes(fixed(value, what)?))
}

/// An address attribute: the kernel takes 4 (IPv4) or 16 bytes and always answers with the
/// full 16-byte `union nf_inet_addr`, IPv4 in the first 4 bytes.
pub(crate) fn inet_addr(value: &[u8], what: &str) -> Result<[u8; 16], DecodeError> {
    let mut out = [0u8; 16];
    match value.len() {
        4 | 16 => {
            out[..value.len()].copy_from_slice(value);
            Ok(out)
        }
        n => Err(DecodeError::from(format!(
            "invalid {what}: expected 4 or 16 bytes, got {n}"
        ))),
    }
}

/// A C string (`NLA_NUL_STRING`): everything up to the first NUL (or the end), UTF-8.
pub(crate) fn c_string(value: &[u8], what: &str) -> Result<String, DecodeError> {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    String::from_utf8(value[..end].to_vec())
        .map_err(|_| DecodeError::from(format!("invalid {what}: not UTF-8")))
}

/// Wire length of a C string value including its terminating NUL.
pub(crate) fn c_string_len(s: &str) -> usize {
    s.len() + 1
}

/// Writes `s` followed by a NUL into `buffer` (which is exactly `c_string_len(s)` long).
pub(crate) fn emit_c_string(s: &str, buffer: &mut [u8]) {
    let n = s.len();
    buffer[..n].copy_from_slice(s.as_bytes());
    buffer[n] = 0;
}

/// Parses every attribute in `value` with `parse`; any malformed attribute fails the list.
pub(crate) fn nested<T>(value: &[u8], what: &str) -> Result<Vec<T>, DecodeError>
where
    T: for<'b> Parseable<NlaBuffer<&'b [u8]>>,
{
    NlasIterator::new(value)
        .map(|nla| {
            nla.map_err(|e| DecodeError::from(format!("invalid {what}: {e}")))
                .and_then(|nla| T::parse(&nla))
        })
        .collect()
}

/// Byte length of a list of attributes.
pub(crate) fn nested_len<T: Nla>(attrs: &[T]) -> usize {
    <&[T] as Emitable>::buffer_len(&attrs)
}

/// Emits a list of attributes back to back (each padded to 4 bytes).
pub(crate) fn emit_nested<T: Nla>(attrs: &[T], buffer: &mut [u8]) {
    <&[T] as Emitable>::emit(&attrs, buffer)
}

/// An attribute kept as is (`Other`): its type with the NESTED or NET_BYTEORDER flag. When
/// both flags are set only NESTED is kept, because netlink-packet-core's emitter writes at
/// most one of them (its `set_nested_flag` re-reads the type without flags); keeping both
/// would make a parsed message re-emit as a different one. The kernel never sends both.
pub(crate) fn other<T: AsRef<[u8]> + ?Sized>(buf: &NlaBuffer<&T>) -> DefaultNla {
    let mut kind = buf.kind();
    if buf.nested_flag() {
        kind |= NLA_F_NESTED;
    } else if buf.network_byte_order_flag() {
        kind |= NLA_F_NET_BYTEORDER;
    }
    DefaultNla::new(kind, buf.value().to_vec())
}
