//! Packet loss on the simulated camera's video, for testing how the client
//! recovers (`LiveSimOptions::video_loss_every`): the first transmission of
//! every n-th video RTP packet is dropped, its retransmission (the NACK
//! responder's answer to the client's NACK) goes through. So a client that
//! NACKs and waits for the retransmission sees no loss at all; one that does
//! not sees one missing packet in every n.
//!
//! It is a webrtc-rs interceptor placed first in the chain (next to the
//! network, below the NACK responder).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use webrtc::interceptor::stream_info::StreamInfo;
use webrtc::interceptor::{
    Attributes, Interceptor, InterceptorBuilder, RTCPReader, RTCPWriter, RTPReader, RTPWriter,
};

/// How many dropped sequence numbers are remembered (to let their
/// retransmissions through).
const REMEMBERED: usize = 64;

/// Builds the interceptor; `every` ≥ 2.
#[derive(Clone)]
pub(crate) struct VideoLoss {
    every: u64,
}

impl VideoLoss {
    pub(crate) fn new(every: u32) -> Self {
        VideoLoss {
            every: u64::from(every.max(2)),
        }
    }
}

impl InterceptorBuilder for VideoLoss {
    fn build(
        &self,
        _id: &str,
    ) -> Result<Arc<dyn Interceptor + Send + Sync>, webrtc::interceptor::Error> {
        Ok(Arc::new(self.clone()))
    }
}

/// The RTP writer of one video stream.
struct Dropping {
    next: Arc<dyn RTPWriter + Send + Sync>,
    every: u64,
    count: AtomicU64,
    dropped: Mutex<VecDeque<u16>>,
}

#[async_trait::async_trait]
impl RTPWriter for Dropping {
    async fn write(
        &self,
        pkt: &webrtc::rtp::packet::Packet,
        attributes: &Attributes,
    ) -> Result<usize, webrtc::interceptor::Error> {
        let seq = pkt.header.sequence_number;
        let drop = {
            let mut dropped = self.dropped.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(i) = dropped.iter().position(|&s| s == seq) {
                // The retransmission of a dropped packet: let it through.
                dropped.remove(i);
                false
            } else if (self.count.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(self.every) {
                if dropped.len() == REMEMBERED {
                    dropped.pop_front();
                }
                dropped.push_back(seq);
                true
            } else {
                false
            }
        };
        if drop {
            return Ok(0);
        }
        self.next.write(pkt, attributes).await
    }
}

#[async_trait::async_trait]
impl Interceptor for VideoLoss {
    async fn bind_rtcp_reader(
        &self,
        reader: Arc<dyn RTCPReader + Send + Sync>,
    ) -> Arc<dyn RTCPReader + Send + Sync> {
        reader
    }

    async fn bind_rtcp_writer(
        &self,
        writer: Arc<dyn RTCPWriter + Send + Sync>,
    ) -> Arc<dyn RTCPWriter + Send + Sync> {
        writer
    }

    async fn bind_local_stream(
        &self,
        info: &StreamInfo,
        writer: Arc<dyn RTPWriter + Send + Sync>,
    ) -> Arc<dyn RTPWriter + Send + Sync> {
        if !info.mime_type.to_ascii_lowercase().starts_with("video/") {
            return writer;
        }
        Arc::new(Dropping {
            next: writer,
            every: self.every,
            count: AtomicU64::new(0),
            dropped: Mutex::new(VecDeque::new()),
        })
    }

    async fn unbind_local_stream(&self, _info: &StreamInfo) {}

    async fn bind_remote_stream(
        &self,
        _info: &StreamInfo,
        reader: Arc<dyn RTPReader + Send + Sync>,
    ) -> Arc<dyn RTPReader + Send + Sync> {
        reader
    }

    async fn unbind_remote_stream(&self, _info: &StreamInfo) {}

    async fn close(&self) -> Result<(), webrtc::interceptor::Error> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end of the chain: records the sequence numbers that reach it.
    #[derive(Default)]
    struct Sink(Mutex<Vec<u16>>);

    #[async_trait::async_trait]
    impl RTPWriter for Sink {
        async fn write(
            &self,
            pkt: &webrtc::rtp::packet::Packet,
            _attributes: &Attributes,
        ) -> Result<usize, webrtc::interceptor::Error> {
            self.0.lock().unwrap().push(pkt.header.sequence_number);
            Ok(0)
        }
    }

    fn packet(seq: u16) -> webrtc::rtp::packet::Packet {
        let mut p = webrtc::rtp::packet::Packet::default();
        p.header.sequence_number = seq;
        p
    }

    #[tokio::test]
    async fn drops_every_nth_first_send_of_video_only() {
        let sink = Arc::new(Sink::default());
        let loss = VideoLoss::new(3);
        let video = StreamInfo {
            mime_type: "video/H264".into(),
            ..Default::default()
        };
        let audio = StreamInfo {
            mime_type: "audio/opus".into(),
            ..Default::default()
        };
        let w = loss.bind_local_stream(&video, sink.clone()).await;
        for seq in 1..=6 {
            w.write(&packet(seq), &Attributes::new()).await.unwrap();
        }
        // The retransmission of 3 passes.
        w.write(&packet(3), &Attributes::new()).await.unwrap();
        assert_eq!(*sink.0.lock().unwrap(), vec![1, 2, 4, 5, 3]);

        let sink = Arc::new(Sink::default());
        let a = loss.bind_local_stream(&audio, sink.clone()).await;
        for seq in 1..=6 {
            a.write(&packet(seq), &Attributes::new()).await.unwrap();
        }
        assert_eq!(sink.0.lock().unwrap().len(), 6);
    }
}
