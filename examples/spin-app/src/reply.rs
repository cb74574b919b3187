//! The HTTP answer: status, content type and a small body, written through wasi:http.

use serde_json::{Value, json};
use std::io::Write;
use wasi::http::types::{Fields, OutgoingBody, OutgoingResponse, ResponseOutparam};

/// A complete response.
pub struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    /// A `text/plain` body.
    pub fn text(status: u16, body: String) -> Reply {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.into_bytes(),
        }
    }

    /// A JSON body.
    pub fn json(status: u16, body: &Value) -> Reply {
        Reply {
            status,
            content_type: "application/json",
            body: body.to_string().into_bytes(),
        }
    }

    /// `{"error": class, "message": message}`.
    pub fn error(status: u16, class: &str, message: &str) -> Reply {
        Reply::json(status, &json!({ "error": class, "message": message }))
    }

    /// Hands the response to the host and writes the body.
    pub fn send(self, out: ResponseOutparam) {
        let headers = Fields::from_list(&[(
            "content-type".to_string(),
            self.content_type.as_bytes().to_vec(),
        )])
        .expect("content-type is an allowed header");
        let response = OutgoingResponse::new(headers);
        response
            .set_status_code(self.status)
            .expect("a valid status code");
        let body = response.body().expect("the body is taken once");
        ResponseOutparam::set(out, Ok(response));
        let mut stream = body.write().expect("the stream is taken once");
        // The client may have gone away; there is nobody left to tell.
        if stream.write_all(&self.body).is_ok() {
            let _ = stream.blocking_flush();
        }
        drop(stream);
        let _ = OutgoingBody::finish(body, None);
    }
}
