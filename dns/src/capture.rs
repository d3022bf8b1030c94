//! An in-memory [`ResponseHandler`] that keeps the encoded responses, so the
//! handler can be tested (and fuzzed) without sockets, as hickory's own
//! tests do. It encodes with the limits hickory's socket handler uses: the
//! response's EDNS payload size over UDP (512 without EDNS), 65535 over TCP.

use std::net::SocketAddr;
use std::sync::Arc;

use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::net::xfer::Protocol;
use hickory_server::net::NetError;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponse;
use parking_lot::Mutex;

/// Collects the bytes of every response sent through it.
#[derive(Clone)]
pub struct CapturingResponseHandler {
    protocol: Protocol,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl CapturingResponseHandler {
    /// A handler encoding as for `protocol` (UDP truncates, TCP does not).
    pub fn new(protocol: Protocol) -> CapturingResponseHandler {
        CapturingResponseHandler {
            protocol,
            sent: Arc::default(),
        }
    }

    /// The responses sent so far, oldest first.
    pub fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.sent.lock())
    }
}

#[async_trait::async_trait]
impl ResponseHandler for CapturingResponseHandler {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let max = match self.protocol {
            Protocol::Udp => response.edns().map_or(512, |e| e.max_payload()),
            _ => u16::MAX,
        };
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max);
        let info = response.destructive_emit(&mut encoder)?;
        self.sent.lock().push(bytes);
        Ok(info)
    }
}

/// Runs raw request bytes through `handler` as the server would (bytes that
/// do not parse as a request get no response here; the server answers those
/// with a header of at least 12 bytes FORMERR itself) and returns the
/// encoded response, if any.
pub async fn handle_bytes<H: RequestHandler>(
    handler: &H,
    bytes: &[u8],
    src: SocketAddr,
    protocol: Protocol,
) -> Option<Vec<u8>> {
    let request = Request::from_bytes(bytes.to_vec(), src, protocol).ok()?;
    if request.metadata.message_type == hickory_proto::op::MessageType::Response {
        return None; // the server drops responses (no reflection)
    }
    let capture = CapturingResponseHandler::new(protocol);
    handler
        .handle_request::<_, hickory_server::net::runtime::TokioTime>(&request, capture.clone())
        .await;
    capture.take().pop()
}
