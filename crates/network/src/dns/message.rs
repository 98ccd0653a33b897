//! The few parts of DNS messages (RFC 1035) the responder needs, parsed by hand: a
//! header, one question, and answers of A records that point back at the question's
//! name. Anything else is refused or answered with an error code, never trusted.

use std::net::Ipv4Addr;

pub const TYPE_A: u16 = 1;
pub const TYPE_AAAA: u16 = 28;
pub const CLASS_IN: u16 = 1;

pub const NOERROR: u8 = 0;
pub const FORMERR: u8 = 1;
pub const SERVFAIL: u8 = 2;
pub const NXDOMAIN: u8 = 3;
pub const NOTIMP: u8 = 4;
pub const REFUSED: u8 = 5;

const HEADER: usize = 12;
/// Seconds an answer may be cached (Docker's embedded server says 600).
pub const TTL: u32 = 600;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("a DNS message shorter than its header")]
    Short,
    #[error("a DNS query with a malformed question")]
    Question,
}

/// A query as far as it was understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    /// The flags word of the query (opcode and RD are echoed).
    pub flags: u16,
    pub qdcount: u16,
    /// The question, lowercased, without the final dot; and where it ends.
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    pub question_end: usize,
}

impl Query {
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    pub fn is_response(&self) -> bool {
        self.flags & 0x8000 != 0
    }
}

/// The ID of a message, if it has a header (for a FORMERR answer).
pub fn id(msg: &[u8]) -> Option<u16> {
    (msg.len() >= HEADER).then(|| u16::from_be_bytes([msg[0], msg[1]]))
}

pub fn parse(msg: &[u8]) -> Result<Query, MessageError> {
    if msg.len() < HEADER {
        return Err(MessageError::Short);
    }
    let word = |i: usize| u16::from_be_bytes([msg[i], msg[i + 1]]);
    let (id, flags, qdcount) = (word(0), word(2), word(4));
    if qdcount != 1 {
        return Err(MessageError::Question);
    }
    let mut labels = Vec::new();
    let mut i = HEADER;
    loop {
        let len = *msg.get(i).ok_or(MessageError::Question)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        // no compression in a question of one, and labels of at most 63 bytes
        if len > 63 || i + len > msg.len() {
            return Err(MessageError::Question);
        }
        let label = std::str::from_utf8(&msg[i..i + len]).map_err(|_| MessageError::Question)?;
        labels.push(label.to_ascii_lowercase());
        i += len;
    }
    if i + 4 > msg.len() || labels.iter().map(|l| l.len() + 1).sum::<usize>() > 255 {
        return Err(MessageError::Question);
    }
    Ok(Query {
        id,
        flags,
        qdcount,
        name: labels.join("."),
        qtype: word(i),
        qclass: word(i + 2),
        question_end: i + 4,
    })
}

/// An answer to `query` (whose bytes are `msg`): the question echoed, `rcode`, and
/// one A record per address.
pub fn answer(msg: &[u8], query: &Query, rcode: u8, addrs: &[Ipv4Addr]) -> Vec<u8> {
    let mut out = Vec::with_capacity(query.question_end + 16 * addrs.len());
    out.extend_from_slice(&query.id.to_be_bytes());
    // QR, the query's opcode and RD, AA; RA (as Docker's server) and the code
    let flags = 0x8000 | (query.flags & 0x7900) | 0x0400 | 0x0080 | u16::from(rcode & 0xf);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&msg[HEADER..query.question_end]);
    for a in addrs {
        out.extend_from_slice(&[0xc0, HEADER as u8]); // the question's name
        out.extend_from_slice(&TYPE_A.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&a.octets());
    }
    out
}

/// A header-only error answer for a message that could not be parsed.
pub fn error(id: u16, rcode: u8) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&(0x8000u16 | u16::from(rcode)).to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    out
}

/// A query for `name` and `qtype` (for tests and clients).
pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// The rcode and A records of an answer (for tests and clients).
pub fn read_answer(msg: &[u8]) -> Option<(u16, u8, Vec<Ipv4Addr>)> {
    let q = parse(msg).ok()?;
    let rcode = (q.flags & 0xf) as u8;
    let ancount = u16::from_be_bytes([msg[6], msg[7]]);
    let mut i = q.question_end;
    let mut addrs = Vec::new();
    for _ in 0..ancount {
        // a pointer name (2 bytes), type, class, ttl, rdlength, rdata
        let rr = msg.get(i..i + 12)?;
        let (rtype, len) = (
            u16::from_be_bytes([rr[2], rr[3]]),
            u16::from_be_bytes([rr[10], rr[11]]) as usize,
        );
        let data = msg.get(i + 12..i + 12 + len)?;
        if rtype == TYPE_A && len == 4 {
            addrs.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        i += 12 + len;
    }
    Some((q.id, rcode, addrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_round_trips_and_answers_point_at_the_question() {
        let q = query(0x1234, "Web.Example.", TYPE_A);
        let p = parse(&q).unwrap();
        assert_eq!(
            (p.id, p.name.as_str(), p.qtype, p.qclass),
            (0x1234, "web.example", 1, 1)
        );
        let a = answer(
            &q,
            &p,
            NOERROR,
            &[Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)],
        );
        let (id, rcode, addrs) = read_answer(&a).unwrap();
        assert_eq!((id, rcode), (0x1234, NOERROR));
        assert_eq!(
            addrs,
            [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3)]
        );
        assert_eq!(a[2] & 0x80, 0x80, "QR");
        assert_eq!(a[2] & 0x01, 0x01, "RD echoed");
        let nx = answer(&q, &p, NXDOMAIN, &[]);
        assert_eq!(read_answer(&nx).unwrap().1, NXDOMAIN);
    }

    #[test]
    fn malformed_questions_are_errors() {
        assert_eq!(parse(&[0; 5]), Err(MessageError::Short));
        let mut q = query(1, "a", TYPE_A);
        q[12] = 60; // a label longer than the message
        assert_eq!(parse(&q), Err(MessageError::Question));
        let mut q = query(1, "a", TYPE_A);
        q[5] = 2; // two questions
        assert_eq!(parse(&q), Err(MessageError::Question));
        let q = query(1, "a", TYPE_A);
        assert_eq!(parse(&q[..q.len() - 1]), Err(MessageError::Question));
        assert_eq!(error(7, FORMERR), [0, 7, 0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    }
}
