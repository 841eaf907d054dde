//! DNS messages: A/AAAA and SRV queries and their answers, built and read with hickory-proto (its
//! message types give the response code and records directly; the socket is ours, see `task`).

use super::state::{Answer, Failure};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use std::net::IpAddr;
use std::str::FromStr;

/// A recursive query for `host`'s records of type A (`v6` false) or AAAA.
pub fn query(id: u16, host: &str, v6: bool, payload: Option<u16>) -> Result<Vec<u8>, String> {
    build(id, host, if v6 { RecordType::AAAA } else { RecordType::A }, payload)
}

/// A recursive query for the SRV records of `name` (`_service._proto.domain`).
pub fn srv_query(id: u16, name: &str, payload: Option<u16>) -> Result<Vec<u8>, String> {
    build(id, name, RecordType::SRV, payload)
}

fn build(id: u16, host: &str, rt: RecordType, payload: Option<u16>) -> Result<Vec<u8>, String> {
    let mut name = Name::from_str(host).map_err(|e| format!("bad name {host}: {e}"))?;
    name.set_fqdn(true);
    let mut m = Message::new();
    m.set_id(id).set_message_type(MessageType::Query).set_op_code(OpCode::Query).set_recursion_desired(true);
    m.add_query(Query::query(name, rt));
    if let Some(p) = payload {
        let mut e = Edns::new();
        e.set_max_payload(p);
        m.set_edns(e);
    }
    m.to_vec().map_err(|e| e.to_string())
}

/// The answer in `bytes`, or None when it is not the response to query `id`.
pub fn answer(bytes: &[u8], id: u16) -> Option<Answer> {
    Some(response(bytes, id)?.map(|m| m.answers().iter().filter_map(address).collect()))
}

/// One SRV record of an answer, with the addresses the additional section gives its target
/// (none: the target is resolved with A/AAAA queries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub target: String,
    pub port: u16,
    pub weight: u16,
    pub ips: Vec<IpAddr>,
}

/// The SRV answer in `bytes`, or None when it is not the response to query `id`.
pub fn srv_answer(bytes: &[u8], id: u16) -> Option<Answer<SrvRecord>> {
    Some(response(bytes, id)?.map(|m| {
        m.answers()
            .iter()
            .filter_map(|r| match r.data() {
                Some(RData::SRV(s)) => Some(SrvRecord {
                    target: s.target().to_ascii(),
                    port: s.port(),
                    weight: s.weight(),
                    ips: m.additionals().iter().filter(|a| a.name() == s.target()).filter_map(address).collect(),
                }),
                _ => None,
            })
            .collect()
    }))
}

/// The message if it answers query `id`: Ok when its code is NOERROR.
fn response(bytes: &[u8], id: u16) -> Option<Result<Message, Failure>> {
    let m = Message::from_vec(bytes).ok()?;
    if m.id() != id || m.message_type() != MessageType::Response {
        return None;
    }
    Some(match m.response_code() {
        ResponseCode::NoError => Ok(m),
        ResponseCode::NXDomain => Err(Failure::Nx),
        ResponseCode::Refused => Err(Failure::Refused),
        _ => Err(Failure::Other),
    })
}

fn address(r: &hickory_proto::rr::Record) -> Option<IpAddr> {
    match r.data() {
        Some(RData::A(a)) => Some(IpAddr::V4(a.0)),
        Some(RData::AAAA(a)) => Some(IpAddr::V6(a.0)),
        _ => None,
    }
}

/// One answer from the A and the AAAA query: any address wins; otherwise the most telling failure.
pub fn combine(a: Answer, aaaa: Answer) -> Answer {
    match (a, aaaa) {
        (Ok(mut x), Ok(y)) => {
            x.extend(y);
            Ok(x)
        }
        (Ok(x), Err(_)) | (Err(_), Ok(x)) if !x.is_empty() => Ok(x),
        (Ok(_), Err(f)) | (Err(f), Ok(_)) => Err(f),
        (Err(f), Err(g)) => Err(if f == g {
            f
        } else {
            [Failure::Refused, Failure::Timeout, Failure::Other]
                .into_iter()
                .find(|k| *k == f || *k == g)
                .unwrap_or(Failure::Other)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::rr::Record;
    use hickory_proto::rr::rdata::{A, AAAA};

    fn reply(q: &[u8], code: ResponseCode, data: Vec<RData>) -> Vec<u8> {
        let q = Message::from_vec(q).unwrap();
        let mut m = Message::new();
        m.set_id(q.id()).set_message_type(MessageType::Response).set_response_code(code);
        m.add_queries(q.queries().to_vec());
        for d in data {
            m.add_answer(Record::from_rdata(q.queries()[0].name().clone(), 5, d));
        }
        m.to_vec().unwrap()
    }

    #[test]
    fn queries_and_answers_round_trip() {
        let q = query(7, "app.example", false, Some(1232)).unwrap();
        let m = Message::from_vec(&q).unwrap();
        assert_eq!(m.queries()[0].query_type(), RecordType::A);
        assert_eq!(m.extensions().as_ref().map(|e| e.max_payload()), Some(1232));
        let r = reply(&q, ResponseCode::NoError, vec![RData::A(A::new(127, 0, 0, 2))]);
        assert_eq!(answer(&r, 7), Some(Ok(vec!["127.0.0.2".parse().unwrap()])));
        assert_eq!(answer(&r, 8), None, "another query's answer");
        assert_eq!(answer(&q, 7), None, "not a response");
        let q6 = query(9, "app.example", true, None).unwrap();
        let r = reply(&q6, ResponseCode::NoError, vec![RData::AAAA(AAAA::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))]);
        assert_eq!(answer(&r, 9), Some(Ok(vec!["2001:db8::1".parse().unwrap()])));
        assert_eq!(answer(&reply(&q6, ResponseCode::NXDomain, vec![]), 9), Some(Err(Failure::Nx)));
        assert_eq!(answer(&reply(&q6, ResponseCode::Refused, vec![]), 9), Some(Err(Failure::Refused)));
        assert_eq!(answer(&reply(&q6, ResponseCode::ServFail, vec![]), 9), Some(Err(Failure::Other)));
        assert!(query(1, "bad..name", false, None).is_err());
    }

    #[test]
    fn srv_answers_carry_port_weight_and_additional_addresses() {
        use hickory_proto::rr::rdata::SRV;
        let q = srv_query(11, "_http._tcp.app.example", None).unwrap();
        assert_eq!(Message::from_vec(&q).unwrap().queries()[0].query_type(), RecordType::SRV);
        let t1 = Name::from_str("a.app.example.").unwrap();
        let t2 = Name::from_str("b.app.example.").unwrap();
        let mut r = Message::from_vec(&reply(
            &q,
            ResponseCode::NoError,
            vec![RData::SRV(SRV::new(1, 512, 8080, t1.clone())), RData::SRV(SRV::new(1, 0, 8081, t2))],
        ))
        .unwrap();
        r.add_additional(Record::from_rdata(t1, 5, RData::A(A::new(127, 0, 0, 2))));
        let got = srv_answer(&r.to_vec().unwrap(), 11).unwrap().unwrap();
        assert_eq!(
            got,
            [
                SrvRecord {
                    target: "a.app.example.".into(),
                    port: 8080,
                    weight: 512,
                    ips: vec!["127.0.0.2".parse().unwrap()]
                },
                SrvRecord { target: "b.app.example.".into(), port: 8081, weight: 0, ips: vec![] },
            ]
        );
        assert_eq!(srv_answer(&reply(&q, ResponseCode::NXDomain, vec![]), 11), Some(Err(Failure::Nx)));
        assert_eq!(srv_answer(&q, 11), None);
    }

    #[test]
    fn a_and_aaaa_combine() {
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        assert_eq!(combine(Ok(vec![ip]), Err(Failure::Nx)), Ok(vec![ip]));
        assert_eq!(combine(Ok(vec![]), Err(Failure::Timeout)), Err(Failure::Timeout));
        assert_eq!(combine(Err(Failure::Nx), Err(Failure::Nx)), Err(Failure::Nx));
        assert_eq!(combine(Err(Failure::Nx), Err(Failure::Timeout)), Err(Failure::Timeout));
        assert_eq!(combine(Ok(vec![]), Ok(vec![])), Ok(vec![]));
    }
}
