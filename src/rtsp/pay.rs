//! The RTSP media's video payloader: a GStreamer element (`GstRTPBasePayload`
//! subclass) that cuts each access unit with the crate's own packetizers (RFC 6184
//! [`crate::media::h264::pay`], RFC 7798 [`crate::media::h265::pay`]) and pushes it
//! downstream as **one buffer list**.
//!
//! Why not `rtph264pay` / `rtph265pay`: they push every NAL unit separately (the
//! SEI, then the slice's fragments), and gst-rtsp-server 1.22's TCP path behind it is an appsink
//! that holds one sample, drained by the stream's send thread under the stream's
//! lock. Each extra push per frame made the streaming thread and the send thread
//! wake each other; one list per access unit makes it one hand-over per frame.
//!
//! A key frame is the one exception: its first packet (the parameter sets'
//! aggregation packet) goes alone, the rest as a list, so the join gate
//! ([`super::join`]) sees a key frame's access unit as two samples and can let
//! joiners in at the second (its rule: from inside a key frame, never a partial
//! NAL unit).
//!
//! The base class keeps what gst-rtsp-server reads from a payloader: `pt`,
//! `seqnum-offset`, `timestamp-offset`, `stats` (RTP-Info), SSRC, and the RTP
//! header's sequence number and timestamp. This element sets the marker on
//! the access unit's last packet and the caps for the SDP from the newest key
//! frame's parameter sets: H.264 `packetization-mode=1`, `sprop-parameter-sets`,
//! `profile-level-id`; H.265 `sprop-vps`, `sprop-sps`, `sprop-pps`.

use std::sync::Mutex;

use base64::Engine as _;
use bytes::Bytes;
use gst::glib;
use gst::subclass::prelude::*;
use gst_rtp::prelude::*;
use gst_rtp::subclass::prelude::*;
use gstreamer as gst;
use gstreamer_rtp as gst_rtp;

use crate::media::{VideoCodec, h264, h265};

/// Size of the RTP header this element writes (no CSRCs, no extension).
const RTP_HEADER: usize = 12;

glib::wrapper! {
    /// See the module docs.
    pub struct VideoPay(ObjectSubclass<imp::VideoPay>)
        @extends gst_rtp::RTPBasePayload, gst::Element, gst::Object;
}

impl VideoPay {
    /// A new `codec` payloader named `name` with payload type `pt`.
    pub fn new(name: &str, pt: u32, codec: VideoCodec) -> Self {
        let pay: Self = glib::Object::builder()
            .property("name", name)
            .property("pt", pt)
            .build();
        let _ = pay.imp().codec.set(codec);
        let encoding = match codec {
            VideoCodec::H264 => "H264",
            VideoCodec::H265 => "H265",
        };
        pay.set_options("video", true, encoding, 90_000);
        pay
    }
}

mod imp {
    use super::*;

    #[derive(Default)]
    pub struct VideoPay {
        /// Set once by [`super::VideoPay::new`].
        pub(super) codec: std::sync::OnceLock<VideoCodec>,
        /// The parameter sets announced in the caps (in SDP order).
        announced: Mutex<Vec<Bytes>>,
        /// Largest payload: the base class's `mtu` (1400 unless the media
        /// factory sets another, before the stream starts) minus the RTP header,
        /// read at `set_caps` rather than per frame (a locked property read).
        payload_mtu: std::sync::atomic::AtomicUsize,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for VideoPay {
        const NAME: &'static str = "RingBridgeVideoPay";
        type Type = super::VideoPay;
        type ParentType = gst_rtp::RTPBasePayload;
    }

    impl ObjectImpl for VideoPay {}

    impl GstObjectImpl for VideoPay {}

    impl ElementImpl for VideoPay {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static META: std::sync::OnceLock<gst::subclass::ElementMetadata> =
                std::sync::OnceLock::new();
            Some(META.get_or_init(|| {
                gst::subclass::ElementMetadata::new(
                    "ring-bridge video payloader",
                    "Codec/Payloader/Network/RTP",
                    "Payloads H.264 and H.265 access units into one RTP buffer list each (RFC 6184, RFC 7798)",
                    "ring-bridge",
                )
            }))
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: std::sync::OnceLock<Vec<gst::PadTemplate>> =
                std::sync::OnceLock::new();
            TEMPLATES.get_or_init(|| {
                let mut sink = gst::Caps::new_empty();
                let mut src = gst::Caps::new_empty();
                for (media, encoding) in [("video/x-h264", "H264"), ("video/x-h265", "H265")] {
                    let caps = sink.get_mut().expect("a new caps");
                    caps.append(
                        gst::Caps::builder(media)
                            .field("stream-format", "byte-stream")
                            .field("alignment", "au")
                            .build(),
                    );
                    src.get_mut().expect("a new caps").append(
                        gst::Caps::builder("application/x-rtp")
                            .field("media", "video")
                            .field("clock-rate", 90_000i32)
                            .field("encoding-name", encoding)
                            .build(),
                    );
                }
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

    impl RTPBasePayloadImpl for VideoPay {
        fn set_caps(&self, _caps: &gst::Caps) -> Result<(), gst::LoggableError> {
            let mtu = (self.obj().mtu() as usize).saturating_sub(RTP_HEADER);
            self.payload_mtu
                .store(mtu, std::sync::atomic::Ordering::Relaxed);
            self.announced
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clear();
            self.announce(&[])
        }

        fn handle_buffer(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            let pts = buffer.pts();
            let dts = buffer.dts();
            // The feeder marks every frame but the hub's key frames.
            let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
            let map = buffer
                .into_mapped_buffer_readable()
                .map_err(|_| gst::FlowError::Error)?;
            let au = Bytes::from_owner(map);
            let mtu = self.payload_mtu.load(std::sync::atomic::Ordering::Relaxed);
            let payloads = match self.codec() {
                VideoCodec::H264 => h264::pay::packetize(&au, mtu),
                VideoCodec::H265 => h265::pay::packetize(&au, mtu),
            };
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

    impl VideoPay {
        fn codec(&self) -> VideoCodec {
            self.codec.get().copied().unwrap_or(VideoCodec::H264)
        }

        /// Puts new parameter sets of key frame `au` into the caps (SDP).
        fn update_caps(&self, au: &Bytes) -> Result<(), gst::FlowError> {
            let sets: Option<Vec<Bytes>> = match self.codec() {
                VideoCodec::H264 => match h264::find_parameter_sets(au) {
                    (Some(sps), Some(pps)) => Some(vec![sps, pps]),
                    _ => None,
                },
                VideoCodec::H265 => {
                    let ps = h265::find_parameter_sets(au);
                    ps.vps
                        .zip(ps.sps)
                        .zip(ps.pps)
                        .map(|((v, s), p)| vec![v, s, p])
                }
            };
            let Some(sets) = sets else {
                return Ok(());
            };
            {
                let mut a = self.announced.lock().unwrap_or_else(|e| e.into_inner());
                if *a == sets {
                    return Ok(());
                }
                a.clone_from(&sets);
            }
            self.announce(&sets)
                .map_err(|_| gst::FlowError::NotNegotiated)
        }

        /// Sets the caps' fields for `sets` (H.264: SPS, PPS; H.265: VPS, SPS,
        /// PPS; empty: not known yet).
        fn announce(&self, sets: &[Bytes]) -> Result<(), gst::LoggableError> {
            let b64 = |b: &Bytes| base64::engine::general_purpose::STANDARD.encode(b);
            let mut s = gst::Structure::builder("application/x-rtp");
            if self.codec() == VideoCodec::H264 {
                s = s.field("packetization-mode", "1");
            }
            match (self.codec(), sets) {
                (VideoCodec::H264, [sps, pps]) => {
                    s = s.field("sprop-parameter-sets", format!("{},{}", b64(sps), b64(pps)));
                    if let Some(pli) = h264::sps::profile_level_id_of(sps) {
                        s = s.field("profile-level-id", pli);
                    }
                }
                (VideoCodec::H265, [vps, sps, pps]) => {
                    s = s
                        .field("sprop-vps", b64(vps))
                        .field("sprop-sps", b64(sps))
                        .field("sprop-pps", b64(pps));
                }
                // Not known yet (before the first key frame).
                _ => {}
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
    use crate::media::VideoDepacketizer;

    fn annex_b(nals: &[&[u8]]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| [&[0u8, 0, 0, 1][..], n].concat())
            .collect()
    }

    /// A NAL unit: `header` then `n` bytes without start-code lookalikes.
    fn body(header: &[u8], n: usize) -> Vec<u8> {
        header
            .iter()
            .copied()
            .chain((0..n).map(|i| (i % 7 + 1) as u8))
            .collect()
    }

    /// Runs `aus` (one every 66 ms, the first a key frame) through a `codec` payloader in a real
    /// pipeline; returns each access unit's samples (a buffer or a list each, as
    /// RTP packets) and the payloader's source caps.
    fn payload(
        codec: VideoCodec,
        aus: &[Vec<u8>],
        samples: &[usize],
    ) -> (Vec<Vec<Vec<Vec<u8>>>>, gst::Caps) {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let media = match codec {
            VideoCodec::H264 => "video/x-h264",
            VideoCodec::H265 => "video/x-h265",
        };
        let src = gst_app::AppSrc::builder()
            .caps(
                &gst::Caps::builder(media)
                    .field("stream-format", "byte-stream")
                    .field("alignment", "au")
                    .build(),
            )
            .format(gst::Format::Time)
            .build();
        let pay = VideoPay::new("pay0", 96, codec);
        let sink = gst_app::AppSink::builder().sync(false).build();
        sink.set_property("buffer-list", true);
        let chain: [&gst::Element; 3] = [src.upcast_ref(), pay.upcast_ref(), sink.upcast_ref()];
        pipeline.add_many(chain).unwrap();
        gst::Element::link_many(chain).unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        for (i, au) in aus.iter().enumerate() {
            let mut b = gst::Buffer::from_slice(au.clone());
            let b_mut = b.get_mut().unwrap();
            b_mut.set_pts(gst::ClockTime::from_mseconds(66 * i as u64));
            if i > 0 {
                // As the feeder marks every frame but the key frames.
                b_mut.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
            src.push_buffer(b).unwrap();
        }
        let one = |b: &gst::BufferRef| b.map_readable().unwrap().to_vec();
        let out = samples
            .iter()
            .map(|&n| {
                (0..n)
                    .map(|_| {
                        let sample = sink
                            .try_pull_sample(gst::ClockTime::from_seconds(10))
                            .expect("a sample");
                        match sample.buffer_list() {
                            Some(l) => l.iter().map(one).collect(),
                            None => vec![one(sample.buffer().unwrap())],
                        }
                    })
                    .collect()
            })
            .collect();
        let caps = pay.static_pad("src").unwrap().current_caps().unwrap();
        pipeline.set_state(gst::State::Null).unwrap();
        (out, caps)
    }

    /// Checks each access unit's packets (RTP header, marker, sequence numbers,
    /// one timestamp, MTU) and that they depacketize back to it.
    fn check(codec: VideoCodec, aus: &[Vec<u8>], got: &[Vec<Vec<Vec<u8>>>]) {
        let mut d = VideoDepacketizer::new(codec);
        let mut seq = None;
        for (au, samples) in aus.iter().zip(got) {
            let group: Vec<&Vec<u8>> = samples.iter().flatten().collect();
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
    }

    #[test]
    fn h264_one_list_per_access_unit_and_a_key_frame_split_after_its_first_packet() {
        let sps: &[u8] = &[0x67, 0x42, 0xc0, 0x1f, 0xda];
        let pps: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
        let sei: &[u8] = &[0x06, 5, 1, 2, 3, 0x80];
        let aus = [
            annex_b(&[sps, pps, sei, &body(&[0x65], 4000)]),
            annex_b(&[sei, &body(&[0x41], 3000)]),
        ];
        // The key frame: its parameter sets' STAP-A alone, then the IDR slice's
        // FU-A run; the P-frame as one list (the SEI, then the slice's FU-A run).
        let (got, caps) = payload(VideoCodec::H264, &aus, &[2, 1]);
        assert_eq!(got[0][0].len(), 1);
        assert_eq!(got[0][0][0][12] & 0x1f, 24, "STAP-A");
        assert_eq!(got[0][1].len(), 3, "FU-A run of the 4 KB IDR slice");
        assert_eq!(got[1][0].len(), 4);
        check(VideoCodec::H264, &aus, &got);
        let s = caps.structure(0).unwrap();
        assert_eq!(s.get::<&str>("encoding-name").unwrap(), "H264");
        assert_eq!(s.get::<&str>("packetization-mode").unwrap(), "1");
        assert_eq!(s.get::<&str>("profile-level-id").unwrap(), "42c01f");
        assert_eq!(
            s.get::<&str>("sprop-parameter-sets").unwrap(),
            "Z0LAH9o=,aM48gA=="
        );
        assert_eq!(s.get::<i32>("payload").unwrap(), 96);
    }

    #[test]
    fn h265_key_frames_announce_vps_sps_pps_and_split_after_their_aggregation_packet() {
        let vps: &[u8] = &[0x40, 0x01, 0x0c, 0x01];
        let sps: &[u8] = &[0x42, 0x01, 0x01, 0x01];
        let pps: &[u8] = &[0x44, 0x01, 0xc1, 0x72];
        let aus = [
            annex_b(&[vps, sps, pps, &body(&[0x26, 0x01, 0xaf], 3000)]),
            annex_b(&[&body(&[0x02, 0x01, 0xd0], 2000)]),
        ];
        let (got, caps) = payload(VideoCodec::H265, &aus, &[2, 1]);
        assert_eq!(got[0][0].len(), 1);
        assert_eq!((got[0][0][0][12] >> 1) & 0x3f, 48, "AP of VPS, SPS, PPS");
        assert_eq!(got[0][1].len(), 3, "FU run of the IDR");
        assert_eq!(got[1][0].len(), 2);
        check(VideoCodec::H265, &aus, &got);
        let s = caps.structure(0).unwrap();
        assert_eq!(s.get::<&str>("encoding-name").unwrap(), "H265");
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        assert_eq!(s.get::<&str>("sprop-vps").unwrap(), b64(vps));
        assert_eq!(s.get::<&str>("sprop-sps").unwrap(), b64(sps));
        assert_eq!(s.get::<&str>("sprop-pps").unwrap(), b64(pps));
    }
}
