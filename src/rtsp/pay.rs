//! The RTSP media's H.264 payloader: a GStreamer element (`GstRTPBasePayload`
//! subclass) that cuts each access unit with the crate's own RFC 6184 packetizer
//! ([`crate::media::h264::pay`]) and pushes it downstream as **one buffer list**.
//!
//! Why not `rtph264pay`: it pushes every NAL unit separately (the SEI, then the
//! slice's FU-A run), and gst-rtsp-server 1.22's TCP path behind it is an appsink
//! that holds one sample, drained by the stream's send thread under the stream's
//! lock. Each extra push per frame made the streaming thread and the send thread
//! wake each other; one list per access unit makes it one hand-over per frame.
//!
//! A key frame is the one exception: its first packet (the parameter sets'
//! STAP-A) goes alone, the rest as a list, so the join gate
//! ([`super::join`]) sees a key frame's access unit as two samples and can let
//! joiners in at the second (its rule: from inside a key frame, never a partial
//! NAL unit).
//!
//! The base class keeps what gst-rtsp-server reads from a payloader: `pt`,
//! `seqnum-offset`, `timestamp-offset`, `stats` (RTP-Info), SSRC, and the RTP
//! header's sequence number and timestamp. This element sets the marker on
//! the access unit's last packet and the caps for the SDP: `packetization-mode=1`,
//! and `sprop-parameter-sets` and `profile-level-id` from the newest key frame.

use std::sync::Mutex;

use base64::Engine as _;
use bytes::Bytes;
use gst::glib;
use gst::subclass::prelude::*;
use gst_rtp::prelude::*;
use gst_rtp::subclass::prelude::*;
use gstreamer as gst;
use gstreamer_rtp as gst_rtp;

use crate::media::h264;

/// Size of the RTP header this element writes (no CSRCs, no extension).
const RTP_HEADER: usize = 12;

glib::wrapper! {
    /// See the module docs.
    pub struct H264Pay(ObjectSubclass<imp::H264Pay>)
        @extends gst_rtp::RTPBasePayload, gst::Element, gst::Object;
}

impl H264Pay {
    /// A new payloader named `name` with payload type `pt`.
    pub fn new(name: &str, pt: u32) -> Self {
        glib::Object::builder()
            .property("name", name)
            .property("pt", pt)
            .build()
    }
}

mod imp {
    use super::*;

    /// The parameter sets announced in the caps.
    #[derive(Default)]
    struct Announced {
        sps: Option<Bytes>,
        pps: Option<Bytes>,
    }

    #[derive(Default)]
    pub struct H264Pay {
        announced: Mutex<Announced>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for H264Pay {
        const NAME: &'static str = "RingBridgeH264Pay";
        type Type = super::H264Pay;
        type ParentType = gst_rtp::RTPBasePayload;
    }

    impl ObjectImpl for H264Pay {
        fn constructed(&self) {
            self.parent_constructed();
            self.obj().set_options("video", true, "H264", 90_000);
        }
    }

    impl GstObjectImpl for H264Pay {}

    impl ElementImpl for H264Pay {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: std::sync::OnceLock<gst::subclass::ElementMetadata> =
                std::sync::OnceLock::new();
            Some(META.get_or_init(|| {
                gst::subclass::ElementMetadata::new(
                    "ring-bridge H.264 payloader",
                    "Codec/Payloader/Network/RTP",
                    "Payloads H.264 access units into one RTP buffer list each (RFC 6184)",
                    "ring-bridge",
                )
            }))
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: std::sync::OnceLock<Vec<gst::PadTemplate>> =
                std::sync::OnceLock::new();
            TEMPLATES.get_or_init(|| {
                let sink = gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build();
                let src = gst::Caps::builder("application/x-rtp")
                    .field("media", "video")
                    .field("clock-rate", 90_000i32)
                    .field("encoding-name", "H264")
                    .build();
                [
                    ("sink", gst::PadDirection::Sink, sink),
                    ("src", gst::PadDirection::Src, src),
                ]
                .into_iter()
                .filter_map(|(name, dir, caps)| {
                    gst::PadTemplate::new(name, dir, gst::PadPresence::Always, &caps).ok()
                })
                .collect()
            })
        }
    }

    impl RTPBasePayloadImpl for H264Pay {
        fn set_caps(&self, _caps: &gst::Caps) -> Result<(), gst::LoggableError> {
            *self.announced.lock().unwrap_or_else(|e| e.into_inner()) = Announced::default();
            self.announce(None, None)
        }

        fn handle_buffer(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            let pts = buffer.pts();
            let dts = buffer.dts();
            let map = buffer
                .into_mapped_buffer_readable()
                .map_err(|_| gst::FlowError::Error)?;
            let au = Bytes::from_owner(map);
            // The base class's `mtu` (1400 unless the media factory sets another)
            // counts the RTP header.
            let mtu = (self.obj().mtu() as usize).saturating_sub(RTP_HEADER);
            let payloads = h264::pay::packetize(&au, mtu);
            let key = h264::contains_idr(&au);
            if key {
                self.update_caps(&au)?;
            }
            let last = payloads.len().saturating_sub(1);
            let mut packets = payloads
                .iter()
                .enumerate()
                .map(|(i, p)| rtp_packet(p, i == last, key, pts, dts));
            let obj = self.obj();
            if key && payloads.len() > 1 {
                obj.push(packets.next().ok_or(gst::FlowError::Error)??)?;
            }
            let mut list = gst::BufferList::new_sized(payloads.len());
            {
                let list = list.get_mut().ok_or(gst::FlowError::Error)?;
                for p in packets {
                    list.add(p?);
                }
            }
            if list.is_empty() {
                return Ok(gst::FlowSuccess::Ok);
            }
            obj.push_list(list)
        }
    }

    impl H264Pay {
        /// Puts new parameter sets of key frame `au` into the caps (SDP).
        fn update_caps(&self, au: &Bytes) -> Result<(), gst::FlowError> {
            let (sps, pps) = h264::find_parameter_sets(au);
            let (Some(sps), Some(pps)) = (sps, pps) else {
                return Ok(());
            };
            {
                let mut a = self.announced.lock().unwrap_or_else(|e| e.into_inner());
                if a.sps.as_ref() == Some(&sps) && a.pps.as_ref() == Some(&pps) {
                    return Ok(());
                }
                a.sps = Some(sps.clone());
                a.pps = Some(pps.clone());
            }
            self.announce(Some(&sps), Some(&pps))
                .map_err(|_| gst::FlowError::NotNegotiated)
        }

        fn announce(
            &self,
            sps: Option<&Bytes>,
            pps: Option<&Bytes>,
        ) -> Result<(), gst::LoggableError> {
            let mut s =
                gst::Structure::builder("application/x-rtp").field("packetization-mode", "1");
            if let (Some(sps), Some(pps)) = (sps, pps) {
                let b64 = base64::engine::general_purpose::STANDARD;
                s = s.field(
                    "sprop-parameter-sets",
                    format!("{},{}", b64.encode(sps), b64.encode(pps)),
                );
                if let Some(pli) = sps.get(1..4) {
                    s = s.field(
                        "profile-level-id",
                        format!("{:02x}{:02x}{:02x}", pli[0], pli[1], pli[2]),
                    );
                }
            }
            self.obj()
                .set_outcaps(Some(&s.build()))
                .map_err(|e| gst::loggable_error!(gst::CAT_RUST, "{e}"))
        }
    }

    /// One RTP packet around `payload`; the base class fills in sequence number,
    /// timestamp, SSRC and payload type when it is pushed.
    fn rtp_packet(
        payload: &[u8],
        marker: bool,
        key: bool,
        pts: Option<gst::ClockTime>,
        dts: Option<gst::ClockTime>,
    ) -> Result<gst::Buffer, gst::FlowError> {
        let len = u32::try_from(payload.len()).map_err(|_| gst::FlowError::Error)?;
        let mut buf =
            gst::Buffer::new_rtp_with_sizes(len, 0, 0).map_err(|_| gst::FlowError::Error)?;
        {
            let b = buf.get_mut().ok_or(gst::FlowError::Error)?;
            b.set_pts(pts);
            b.set_dts(dts);
            if !key {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
            let mut rtp =
                gst_rtp::RTPBuffer::from_buffer_writable(b).map_err(|_| gst::FlowError::Error)?;
            rtp.set_marker(marker);
            rtp.payload_mut()
                .map_err(|_| gst::FlowError::Error)?
                .copy_from_slice(payload);
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use gstreamer_app as gst_app;

    use super::*;
    use crate::media::h264::rtp::Depacketizer;

    fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| [&[0u8, 0, 0, 1][..], n].concat())
            .collect()
    }

    fn body(first: u8, n: usize) -> Vec<u8> {
        std::iter::once(first)
            .chain((0..n).map(|i| (i % 7 + 1) as u8))
            .collect()
    }

    /// What the element pushed for one access unit: the samples (a buffer or a
    /// list each) as RTP packets.
    fn packets(sample: &gst::Sample) -> Vec<Vec<u8>> {
        let one = |b: &gst::BufferRef| b.map_readable().unwrap().to_vec();
        match sample.buffer_list() {
            Some(l) => l.iter().map(one).collect(),
            None => vec![one(sample.buffer().unwrap())],
        }
    }

    #[test]
    fn one_list_per_access_unit_and_a_key_frame_split_after_its_first_packet() {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let src = gst_app::AppSrc::builder()
            .caps(
                &gst::Caps::builder("video/x-h264")
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
            )
            .format(gst::Format::Time)
            .build();
        let pay = H264Pay::new("pay0", 96);
        let sink = gst_app::AppSink::builder().sync(false).build();
        sink.set_property("buffer-list", true);
        let chain: [&gst::Element; 3] = [src.upcast_ref(), pay.upcast_ref(), sink.upcast_ref()];
        pipeline.add_many(chain).unwrap();
        gst::Element::link_many(chain).unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();

        let sps: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];
        let pps: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
        let sei: &[u8] = &[0x06, 5, 1, 2, 3, 0x80];
        let aus = [
            annex_b(&[sps, pps, sei, &body(0x65, 4000)]),
            annex_b(&[sei, &body(0x41, 3000)]),
        ];
        for (i, au) in aus.iter().enumerate() {
            let mut b = gst::Buffer::from_slice(au.clone());
            b.get_mut()
                .unwrap()
                .set_pts(gst::ClockTime::from_mseconds(66 * i as u64));
            src.push_buffer(b).unwrap();
        }
        let pull = || {
            sink.try_pull_sample(gst::ClockTime::from_seconds(10))
                .unwrap()
        };
        // The key frame: its parameter sets' STAP-A alone, then the rest.
        let first = packets(&pull());
        assert_eq!(first.len(), 1);
        let key_rest = packets(&pull());
        assert_eq!(key_rest.len(), 3, "FU-A run of the 4 KB IDR slice");
        // The P-frame: one list.
        let p_frame = packets(&pull());
        assert_eq!(p_frame.len(), 4, "the SEI, then the slice's FU-A run");

        let mut d = Depacketizer::default();
        let groups = [[first, key_rest].concat(), p_frame];
        let mut seq = None;
        for (au, group) in aus.iter().zip(&groups) {
            let ts = u32::from_be_bytes(group[0][4..8].try_into().unwrap());
            for (k, p) in group.iter().enumerate() {
                assert_eq!(p[0], 0x80, "RTP v2, no padding, extension or CSRC");
                let marker = p[1] & 0x80 != 0;
                assert_eq!(
                    marker,
                    k + 1 == group.len(),
                    "marker on the last packet only"
                );
                assert_eq!(p[1] & 0x7f, 96);
                let s = u16::from_be_bytes([p[2], p[3]]);
                if let Some(prev) = seq {
                    assert_eq!(
                        s,
                        u16::wrapping_add(prev, 1),
                        "consecutive sequence numbers"
                    );
                }
                seq = Some(s);
                assert_eq!(u32::from_be_bytes(p[4..8].try_into().unwrap()), ts);
                assert!(p.len() <= 1400, "the base class's MTU");
                d.push(s, ts, marker, &Bytes::copy_from_slice(&p[12..]));
            }
            assert_eq!(&d.pull().expect("access unit").data[..], &au[..]);
        }

        // The caps carry what the SDP needs.
        let caps = pay.static_pad("src").unwrap().current_caps().unwrap();
        let s = caps.structure(0).unwrap();
        assert_eq!(s.get::<&str>("packetization-mode").unwrap(), "1");
        assert_eq!(s.get::<&str>("profile-level-id").unwrap(), "42c01f");
        assert_eq!(
            s.get::<&str>("sprop-parameter-sets").unwrap(),
            "Z0LAH9o=,aM48gA=="
        );
        assert_eq!(s.get::<i32>("payload").unwrap(), 96);
        pipeline.set_state(gst::State::Null).unwrap();
    }
}
