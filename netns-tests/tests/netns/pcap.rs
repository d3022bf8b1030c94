//! Reads UDP payloads out of a tcpdump capture (classic pcap, Ethernet).

/// UDP payloads of every IPv4/IPv6 UDP packet in `pcap`.
pub fn udp_payloads(pcap: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if pcap.len() < 24 {
        return out;
    }
    let little = pcap[0..4] == [0xd4, 0xc3, 0xb2, 0xa1] || pcap[0..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let u32_at = |b: &[u8], i: usize| {
        let a = [b[i], b[i + 1], b[i + 2], b[i + 3]];
        if little { u32::from_le_bytes(a) } else { u32::from_be_bytes(a) }
    };
    let linktype = u32_at(pcap, 20);
    let mut pos = 24;
    while pos + 16 <= pcap.len() {
        let caplen = u32_at(pcap, pos + 8) as usize;
        let start = pos + 16;
        let Some(frame) = pcap.get(start..start + caplen) else { break };
        pos = start + caplen;
        let l3 = match linktype {
            1 if frame.len() > 14 => &frame[14..],   // Ethernet
            113 if frame.len() > 16 => &frame[16..], // Linux cooked
            101 => frame,                            // raw IP
            _ => continue,
        };
        if let Some(p) = udp_payload(l3) {
            out.push(p.to_vec());
        }
    }
    out
}

fn udp_payload(ip: &[u8]) -> Option<&[u8]> {
    let (proto, header) = match ip.first()? >> 4 {
        4 => (*ip.get(9)?, usize::from(ip[0] & 0x0f) * 4),
        6 => (*ip.get(6)?, 40),
        _ => return None,
    };
    (proto == 17).then(|| ip.get(header + 8..)).flatten()
}
