// Tests for common/quic: RFC 9001 / RFC 9369 Appendix A vectors byte for byte,
// TLS ClientHello extraction, CRYPTO reassembly and robustness on bad input.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "quic/frames.hpp"
#include "quic/header.hpp"
#include "quic/initial.hpp"
#include "quic/sniff.hpp"
#include "quic/tls.hpp"
#include "quic/version.hpp"
#include "quic/wire.hpp"

using namespace edge::quic;

namespace {

using Buf = std::vector<std::uint8_t>;

Buf hex(std::string_view s) {
    Buf out;
    int hi = -1;
    for (char c : s) {
        int v = -1;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        else continue;  // allow spaces between groups, as printed in the RFCs
        if (hi < 0) {
            hi = v;
        } else {
            out.push_back(static_cast<std::uint8_t>(hi << 4 | v));
            hi = -1;
        }
    }
    if (hi >= 0) out.clear();  // odd digit count: a typo in a vector; make every check fail
    return out;
}

Buf to_buf(Bytes b) { return Buf(b.begin(), b.end()); }

const Buf kDcid = hex("8394c8f03e515708");

// RFC 9001 A.2 / RFC 9369 A.2: the client's CRYPTO frame (identical in v1 and v2),
// padded to 1162 bytes of payload.
constexpr std::string_view kClientCryptoFrame =
    "060040f1010000ed0303ebf8fa56f129 39b9584a3896472ec40bb863cfd3e868"
    "04fe3a47f06a2b69484c000004130113 02010000c000000010000e00000b6578"
    "616d706c652e636f6dff01000100000a 00080006001d00170018001000070005"
    "04616c706e0005000501000000000033 00260024001d00209370b2c9caa47fba"
    "baf4559fedba753de171fa71f50f1ce1 5d43e994ec74d748002b000302030400"
    "0d0010000e0403050306030203080408 050806002d00020101001c0002400100"
    "3900320408ffffffffffffffff050480 00ffff07048000ffff08011001048000"
    "75300901100f088394c8f03e51570806 048000ffff";

Buf client_payload() {
    Buf p = hex(kClientCryptoFrame);
    p.resize(1162, 0x00);
    return p;
}

// RFC 9001 / RFC 9369 A.3 server payload: ACK + CRYPTO(ServerHello).
constexpr std::string_view kServerPayload =
    "02000000000600405a020000560303ee fce7f7b37ba1d1632e96677825ddf739"
    "88cfc79825df566dc5430b9a045a1200 130100002e00330024001d00209d3c94"
    "0d89690b84d08a60993c144eca684d10 81287c834d5311bcf32bb9da1a002b00"
    "020304";

// RFC 9001 A.2 protected client Initial.
constexpr std::string_view kV1ClientInitial =
    "c000000001088394c8f03e5157080000 449e7b9aec34d1b1c98dd7689fb8ec11"
    "d242b123dc9bd8bab936b47d92ec356c 0bab7df5976d27cd449f63300099f399"
    "1c260ec4c60d17b31f8429157bb35a12 82a643a8d2262cad67500cadb8e7378c"
    "8eb7539ec4d4905fed1bee1fc8aafba1 7c750e2c7ace01e6005f80fcb7df6212"
    "30c83711b39343fa028cea7f7fb5ff89 eac2308249a02252155e2347b63d58c5"
    "457afd84d05dfffdb20392844ae81215 4682e9cf012f9021a6f0be17ddd0c208"
    "4dce25ff9b06cde535d0f920a2db1bf3 62c23e596d11a4f5a6cf3948838a3aec"
    "4e15daf8500a6ef69ec4e3feb6b1d98e 610ac8b7ec3faf6ad760b7bad1db4ba3"
    "485e8a94dc250ae3fdb41ed15fb6a8e5 eba0fc3dd60bc8e30c5c4287e53805db"
    "059ae0648db2f64264ed5e39be2e20d8 2df566da8dd5998ccabdae053060ae6c"
    "7b4378e846d29f37ed7b4ea9ec5d82e7 961b7f25a9323851f681d582363aa5f8"
    "9937f5a67258bf63ad6f1a0b1d96dbd4 faddfcefc5266ba6611722395c906556"
    "be52afe3f565636ad1b17d508b73d874 3eeb524be22b3dcbc2c7468d54119c74"
    "68449a13d8e3b95811a198f3491de3e7 fe942b330407abf82a4ed7c1b311663a"
    "c69890f4157015853d91e923037c227a 33cdd5ec281ca3f79c44546b9d90ca00"
    "f064c99e3dd97911d39fe9c5d0b23a22 9a234cb36186c4819e8b9c5927726632"
    "291d6a418211cc2962e20fe47feb3edf 330f2c603a9d48c0fcb5699dbfe58964"
    "25c5bac4aee82e57a85aaf4e2513e4f0 5796b07ba2ee47d80506f8d2c25e50fd"
    "14de71e6c418559302f939b0e1abd576 f279c4b2e0feb85c1f28ff18f58891ff"
    "ef132eef2fa09346aee33c28eb130ff2 8f5b766953334113211996d20011a198"
    "e3fc433f9f2541010ae17c1bf202580f 6047472fb36857fe843b19f5984009dd"
    "c324044e847a4f4a0ab34f719595de37 252d6235365e9b84392b061085349d73"
    "203a4a13e96f5432ec0fd4a1ee65accd d5e3904df54c1da510b0ff20dcc0c77f"
    "cb2c0e0eb605cb0504db87632cf3d8b4 dae6e705769d1de354270123cb11450e"
    "fc60ac47683d7b8d0f811365565fd98c 4c8eb936bcab8d069fc33bd801b03ade"
    "a2e1fbc5aa463d08ca19896d2bf59a07 1b851e6c239052172f296bfb5e724047"
    "90a2181014f3b94a4e97d117b4381303 68cc39dbb2d198065ae3986547926cd2"
    "162f40a29f0c3c8745c0f50fba3852e5 66d44575c29d39a03f0cda721984b6f4"
    "40591f355e12d439ff150aab7613499d bd49adabc8676eef023b15b65bfc5ca0"
    "6948109f23f350db82123535eb8a7433 bdabcb909271a6ecbcb58b936a88cd4e"
    "8f2e6ff5800175f113253d8fa9ca8885 c2f552e657dc603f252e1a8e308f76f0"
    "be79e2fb8f5d5fbbe2e30ecadd220723 c8c0aea8078cdfcb3868263ff8f09400"
    "54da48781893a7e49ad5aff4af300cd8 04a6b6279ab3ff3afb64491c85194aab"
    "760d58a606654f9f4400e8b38591356f bf6425aca26dc85244259ff2b19c41b9"
    "f96f3ca9ec1dde434da7d2d392b905dd f3d1f9af93d1af5950bd493f5aa731b4"
    "056df31bd267b6b90a079831aaf579be 0a39013137aac6d404f518cfd4684064"
    "7e78bfe706ca4cf5e9c5453e9f7cfd2b 8b4c8d169a44e55c88d4a9a7f9474241"
    "e221af44860018ab0856972e194cd934";

// RFC 9001 A.3 protected server Initial.
constexpr std::string_view kV1ServerInitial =
    "cf000000010008f067a5502a4262b500 4075c0d95a482cd0991cd25b0aac406a"
    "5816b6394100f37a1c69797554780bb3 8cc5a99f5ede4cf73c3ec2493a1839b3"
    "dbcba3f6ea46c5b7684df3548e7ddeb9 c3bf9c73cc3f3bded74b562bfb19fb84"
    "022f8ef4cdd93795d77d06edbb7aaf2f 58891850abbdca3d20398c276456cbc4"
    "2158407dd074ee";

constexpr std::string_view kV1Retry =
    "ff000000010008f067a5502a4262b574 6f6b656e04a265ba2eff4d829058fb3f"
    "0f2496ba";

// RFC 9369 A.2 protected client Initial.
constexpr std::string_view kV2ClientInitial =
    "d76b3343cf088394c8f03e5157080000 449ea0c95e82ffe67b6abcdb4298b485"
    "dd04de806071bf03dceebfa162e75d6c 96058bdbfb127cdfcbf903388e99ad04"
    "9f9a3dd4425ae4d0992cfff18ecf0fdb 5a842d09747052f17ac2053d21f57c5d"
    "250f2c4f0e0202b70785b7946e992e58 a59ac52dea6774d4f03b55545243cf1a"
    "12834e3f249a78d395e0d18f4d766004 f1a2674802a747eaa901c3f10cda5500"
    "cb9122faa9f1df66c392079a1b40f0de 1c6054196a11cbea40afb6ef5253cd68"
    "18f6625efce3b6def6ba7e4b37a40f77 32e093daa7d52190935b8da58976ff33"
    "12ae50b187c1433c0f028edcc4c2838b 6a9bfc226ca4b4530e7a4ccee1bfa2a3"
    "d396ae5a3fb512384b2fdd851f784a65 e03f2c4fbe11a53c7777c023462239dd"
    "6f7521a3f6c7d5dd3ec9b3f233773d4b 46d23cc375eb198c63301c21801f6520"
    "bcfb7966fc49b393f0061d974a2706df 8c4a9449f11d7f3d2dcbb90c6b877045"
    "636e7c0c0fe4eb0f697545460c806910 d2c355f1d253bc9d2452aaa549e27a1f"
    "ac7cf4ed77f322e8fa894b6a83810a34 b361901751a6f5eb65a0326e07de7c12"
    "16ccce2d0193f958bb3850a833f7ae43 2b65bc5a53975c155aa4bcb4f7b2c4e5"
    "4df16efaf6ddea94e2c50b4cd1dfe060 17e0e9d02900cffe1935e0491d77ffb4"
    "fdf85290fdd893d577b1131a610ef6a5 c32b2ee0293617a37cbb08b847741c3b"
    "8017c25ca9052ca1079d8b78aebd4787 6d330a30f6a8c6d61dd1ab5589329de7"
    "14d19d61370f8149748c72f132f0fc99 f34d766c6938597040d8f9e2bb522ff9"
    "9c63a344d6a2ae8aa8e51b7b90a4a806 105fcbca31506c446151adfeceb51b91"
    "abfe43960977c87471cf9ad4074d30e1 0d6a7f03c63bd5d4317f68ff325ba3bd"
    "80bf4dc8b52a0ba031758022eb025cdd 770b44d6d6cf0670f4e990b22347a7db"
    "848265e3e5eb72dfe8299ad7481a4083 22cac55786e52f633b2fb6b614eaed18"
    "d703dd84045a274ae8bfa73379661388 d6991fe39b0d93debb41700b41f90a15"
    "c4d526250235ddcd6776fc77bc97e7a4 17ebcb31600d01e57f32162a8560cacc"
    "7e27a096d37a1a86952ec71bd89a3e9a 30a2a26162984d7740f81193e8238e61"
    "f6b5b984d4d3dfa033c1bb7e4f0037fe bf406d91c0dccf32acf423cfa1e70710"
    "10d3f270121b493ce85054ef58bada42 310138fe081adb04e2bd901f2f13458b"
    "3d6758158197107c14ebb193230cd115 7380aa79cae1374a7c1e5bbcb80ee23e"
    "06ebfde206bfb0fcbc0edc4ebec30966 1bdd908d532eb0c6adc38b7ca7331dce"
    "8dfce39ab71e7c32d318d136b6100671 a1ae6a6600e3899f31f0eed19e3417d1"
    "34b90c9058f8632c798d4490da498730 7cba922d61c39805d072b589bd52fdf1"
    "e86215c2d54e6670e07383a27bbffb5a ddf47d66aa85a0c6f9f32e59d85a44dd"
    "5d3b22dc2be80919b490437ae4f36a0a e55edf1d0b5cb4e9a3ecabee93dfc6e3"
    "8d209d0fa6536d27a5d6fbb17641cde2 7525d61093f1b28072d111b2b4ae5f89"
    "d5974ee12e5cf7d5da4d6a31123041f3 3e61407e76cffcdcfd7e19ba58cf4b53"
    "6f4c4938ae79324dc402894b44faf8af bab35282ab659d13c93f70412e85cb19"
    "9a37ddec600545473cfb5a05e08d0b20 9973b2172b4d21fb69745a262ccde96b"
    "a18b2faa745b6fe189cf772a9f84cbfc";

// RFC 9369 A.3 protected server Initial.
constexpr std::string_view kV2ServerInitial =
    "dc6b3343cf0008f067a5502a4262b500 4075d92faaf16f05d8a4398c47089698"
    "baeea26b91eb761d9b89237bbf872630 17915358230035f7fd3945d88965cf17"
    "f9af6e16886c61bfc703106fbaf3cb4c fa52382dd16a393e42757507698075b2"
    "c984c707f0a0812d8cd5a6881eaf21ce da98f4bd23f6fe1a3e2c43edd9ce7ca8"
    "4bed8521e2e140";

constexpr std::string_view kV2Retry =
    "cf6b3343cf0008f067a5502a4262b574 6f6b656ec8646ce8bfe33952d9555436"
    "65dcc7b6";

// RFC 9001 / RFC 9369 A.5 application secret.
constexpr std::string_view kChachaSecret =
    "9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b";

}  // namespace

TEST_CASE("varint: RFC 9000 A.1 examples and encoding") {
    struct V { const char* enc; std::uint64_t value; };
    for (const V& v : {V{"c2197c5eff14e88c", 151288809941952652ULL}, V{"9d7f3e7d", 494878333},
                       V{"7bbd", 15293}, V{"25", 37}, V{"4025", 37}}) {
        const Buf b = hex(v.enc);
        std::size_t pos = 0;
        auto d = decode_varint(b, pos);
        REQUIRE(d);
        CHECK(*d == v.value);
        CHECK(pos == b.size());
        // Truncated encodings fail without moving pos.
        std::size_t p2 = 0;
        CHECK_FALSE(decode_varint(Bytes(b).first(b.size() - 1), p2));
        CHECK(p2 == 0);
    }
    Buf out;
    CHECK(encode_varint(151288809941952652ULL, out));
    CHECK(out == hex("c2197c5eff14e88c"));
    out.clear();
    CHECK(encode_varint(15293, out));
    CHECK(out == hex("7bbd"));
    out.clear();
    CHECK_FALSE(encode_varint(kVarintMax + 1, out));
    CHECK(encode_varint_fixed(37, 2, out));
    CHECK(out == hex("4025"));
    CHECK_FALSE(encode_varint_fixed(16384, 2, out));
    CHECK(varint_size(63) == 1);
    CHECK(varint_size(64) == 2);
    CHECK(varint_size(kVarintMax) == 8);
    CHECK(varint_size(kVarintMax + 1) == 0);
}

TEST_CASE("version names, grease and packet type mapping") {
    CHECK(version_name(kVersion1) == "v1");
    CHECK(version_name(kVersion2) == "v2");
    CHECK(version_name(kVersion2Draft) == "v2-draft");
    CHECK(version_name(kVersionDraft29) == "draft-29");
    CHECK(version_name(0xff000020) == "draft-32");
    CHECK(version_name(kVersionNegotiation) == "negotiation");
    CHECK(version_name(0x1a2a3a4a) == "grease(0x1a2a3a4a)");
    CHECK(version_name(0xfafafafa) == "grease(0xfafafafa)");
    CHECK(version_name(0x12345678) == "unknown(0x12345678)");
    CHECK(is_grease_version(0x0a0a0a0a));
    CHECK_FALSE(is_grease_version(kVersion1));
    CHECK(is_supported_version(kVersion2Draft));
    CHECK_FALSE(is_supported_version(0x1a2a3a4a));

    CHECK(long_type_from_bits(kVersion1, 0) == LongType::initial);
    CHECK(long_type_from_bits(kVersion1, 3) == LongType::retry);
    CHECK(long_type_from_bits(kVersion2, 1) == LongType::initial);
    CHECK(long_type_from_bits(kVersion2, 2) == LongType::zero_rtt);
    CHECK(long_type_from_bits(kVersion2, 3) == LongType::handshake);
    CHECK(long_type_from_bits(kVersion2, 0) == LongType::retry);
    CHECK(long_type_from_bits(kVersion2Draft, 1) == LongType::initial);
    for (std::uint32_t v : {kVersion1, kVersion2, kVersion2Draft, kVersionDraft29})
        for (LongType t : {LongType::initial, LongType::zero_rtt, LongType::handshake, LongType::retry})
            CHECK(long_type_from_bits(v, long_type_to_bits(v, t)) == t);
}

TEST_CASE("HKDF-Expand-Label builds the RFC 9001 A.1 labels") {
    // HKDF-Expand-Label must equal HKDF-Expand over the documented HkdfLabel bytes;
    // checked indirectly through the derived values below. Here: label size limit.
    const Buf secret(32, 1);
    CHECK_FALSE(hkdf_expand_label(secret, std::string(250, 'x'), {}, 16));
    CHECK(hkdf_expand_label(secret, "quic key", {}, 16)->size() == 16);
}

TEST_CASE("RFC 9001 A.1: v1 Initial keys") {
    auto s = derive_initial_secrets(kVersion1, kDcid);
    REQUIRE(s);
    CHECK(to_buf(s->initial) == hex("7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44"));
    CHECK(to_buf(s->client) == hex("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea"));
    CHECK(to_buf(s->server) == hex("3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b"));
    auto k = derive_initial_keys(kVersion1, kDcid);
    REQUIRE(k);
    CHECK(k->client.key == hex("1f369613dd76d5467730efcbe3b1a22d"));
    CHECK(k->client.iv == hex("fa044b2f42a3fd3b46fb255c"));
    CHECK(k->client.hp == hex("9f50449e04a0e810283a1e9933adedd2"));
    CHECK(k->server.key == hex("cf3a5331653c364c88f0f379b6067e37"));
    CHECK(k->server.iv == hex("0ac1493ca1905853b0bba03e"));
    CHECK(k->server.hp == hex("c206b8d9b9f0f37644430b490eeaa314"));
    CHECK(derive_initial_keys(0x1a2a3a4a, kDcid).error == Error::unsupported_version);
}

TEST_CASE("RFC 9369 A.1: v2 Initial keys") {
    auto s = derive_initial_secrets(kVersion2, kDcid);
    REQUIRE(s);
    CHECK(to_buf(s->initial) == hex("2062e8b3cd8d52092614b8071d0aa1fb7c2e3ac193f78b280e72d8f5751f6aba"));
    CHECK(to_buf(s->client) == hex("14ec9d6eb9fd7af83bf5a668bc17a7e283766aade7ecd0891f70f9ff7f4bf47b"));
    CHECK(to_buf(s->server) == hex("0263db1782731bf4588e7e4d93b7463907cb8cd8200b5da55a8bd488eafc37c1"));
    auto k = derive_initial_keys(kVersion2, kDcid);
    REQUIRE(k);
    CHECK(k->client.key == hex("8b1a0bc121284290a29e0971b5cd045d"));
    CHECK(k->client.iv == hex("91f73e2351d8fa91660e909f"));
    CHECK(k->client.hp == hex("45b95e15235d6f45a6b19cbcb0294ba9"));
    CHECK(k->server.key == hex("82db637861d55e1d011f19ea71d5d2a7"));
    CHECK(k->server.iv == hex("dd13c276499c0249d3310652"));
    CHECK(k->server.hp == hex("edf6d05c83121201b436e16877593c3a"));
}

TEST_CASE("the decoder's Initial key derivation equals BoringSSL's HKDF, for every version and DCID length") {
    // derive_initial_key_material runs HMAC on saved SHA-256 states (no EVP layer):
    // checked against derive_initial_keys (HKDF_extract/expand) byte for byte, including
    // DCIDs past one hash block and the client-only variant.
    std::uint32_t seed = 7;
    for (std::uint32_t v : {kVersion1, kVersion2, kVersion2Draft, kVersionDraft29}) {
        for (std::size_t len : {0, 1, 8, 18, 20, 55, 56, 63, 64, 65, 130}) {
            Buf dcid(len);
            for (auto& b : dcid) b = static_cast<std::uint8_t>((seed = seed * 1103515245 + 12345) >> 16);
            auto ref = derive_initial_keys(v, dcid);
            REQUIRE(ref);
            KeyMaterial c, s, c_only;
            REQUIRE(derive_initial_key_material(v, dcid, c, s) == Error::ok);
            REQUIRE(derive_initial_key_material(v, dcid, c_only, nullptr) == Error::ok);
            auto rc = KeyMaterial::from(ref->client), rs = KeyMaterial::from(ref->server);
            REQUIRE(rc);
            REQUIRE(rs);
            CHECK(c == rc.value);
            CHECK(s == rs.value);
            CHECK(c_only == rc.value);
        }
    }
    KeyMaterial c, s;
    CHECK(derive_initial_key_material(0x1a2a3a4a, kDcid, c, s) == Error::unsupported_version);
}

TEST_CASE("draft-ietf-quic-v2-04 A.1: v2 draft (0x709a50c4) Initial keys") {
    auto s = derive_initial_secrets(kVersion2Draft, kDcid);
    REQUIRE(s);
    CHECK(to_buf(s->initial) == hex("ddfcb7b82a430b7845210ad64b406977ed51b269a14bc69aa9ea9b366fa3b06b"));
    CHECK(to_buf(s->client) == hex("9fe72e1452e91f551b770005054034e47575d4a0fb4c27b7c6cb303a338423ae"));
    CHECK(to_buf(s->server) == hex("3c9bf6a9c1c8c71819876967bd8b979efd98ec665edf27f22c06e9845ba0ae2f"));
    auto k = derive_initial_keys(kVersion2Draft, kDcid);
    REQUIRE(k);
    CHECK(k->client.key == hex("95df2be2e8d549c82e996fc9339f4563"));
    CHECK(k->client.iv == hex("ea5e3c95f933db14b7020ad8"));
    CHECK(k->client.hp == hex("091efb735702447d07908f6501845794"));
    CHECK(k->server.key == hex("15d5b4d9a2b8916aa39b1bfe574d2aad"));
    CHECK(k->server.iv == hex("a85e7ac31cd275cbb095c626"));
    CHECK(k->server.hp == hex("b13861cfadbb9d11ff942dd80c8fc33b"));
}

namespace {

struct InitialVector {
    std::uint32_t version;
    std::string_view client_packet;
    std::string_view client_header;  // unprotected
    std::string_view server_packet;
    std::string_view server_header;  // unprotected
};

void check_initial_vector(const InitialVector& v) {
    const Buf pkt = hex(v.client_packet);
    REQUIRE(pkt.size() == 1200);

    auto h = parse_packet_header(pkt);
    REQUIRE(h);
    CHECK(h->type == PacketType::initial);
    CHECK(h->version == v.version);
    CHECK(h->long_header);
    CHECK(h->fixed_bit);
    CHECK(to_buf(h->dcid) == kDcid);
    CHECK(h->scid.empty());
    CHECK(h->token.empty());
    CHECK(h->length == 1182);
    CHECK(h->pn_offset == 18);
    CHECK(h->size == 1200);

    auto opened = open_initial(*h, h->dcid, true);
    REQUIRE(opened);
    CHECK(opened->header == hex(v.client_header));
    CHECK(opened->packet_number == 2);
    CHECK(opened->pn_length == 4);
    CHECK(opened->reserved_bits_zero);
    CHECK(opened->payload == client_payload());
    // Wrong direction keys must not authenticate.
    CHECK(open_initial(*h, h->dcid, false).error == Error::crypto);

    // Seal the plaintext back into the exact RFC bytes.
    auto keys = derive_initial_keys(v.version, kDcid);
    REQUIRE(keys);
    const Buf payload = client_payload();
    LongPacketSpec spec;
    spec.version = v.version;
    spec.type = LongType::initial;
    spec.dcid = kDcid;
    spec.packet_number = 2;
    spec.pn_length = 4;
    spec.payload = payload;
    auto sealed = build_long_packet(spec, keys->client);
    REQUIRE(sealed);
    CHECK(*sealed == pkt);

    // Server Initial: keys come from the client's original DCID.
    const Buf spkt = hex(v.server_packet);
    auto sh = parse_packet_header(spkt);
    REQUIRE(sh);
    CHECK(sh->type == PacketType::initial);
    CHECK(sh->dcid.empty());
    CHECK(to_buf(sh->scid) == hex("f067a5502a4262b5"));
    CHECK(sh->size == spkt.size());
    auto sopened = open_initial(*sh, kDcid, false);
    REQUIRE(sopened);
    CHECK(sopened->header == hex(v.server_header));
    CHECK(sopened->packet_number == 1);
    CHECK(sopened->pn_length == 2);
    CHECK(sopened->payload == hex(kServerPayload));

    const Buf spayload = hex(kServerPayload);
    const Buf scid = hex("f067a5502a4262b5");
    LongPacketSpec sspec;
    sspec.version = v.version;
    sspec.scid = scid;
    sspec.packet_number = 1;
    sspec.pn_length = 2;
    sspec.payload = spayload;
    auto ssealed = build_long_packet(sspec, keys->server);
    REQUIRE(ssealed);
    CHECK(*ssealed == spkt);

    // Server payload: ACK then CRYPTO carrying the ServerHello.
    auto frames = parse_frames(sopened->payload);
    REQUIRE(frames);
    REQUIRE(frames->size() == 2);
    CHECK((*frames)[0].type == frame_type::ack);
    CHECK((*frames)[0].largest_acked == 0);
    CHECK((*frames)[0].ack_ranges.empty());
    CHECK((*frames)[1].type == frame_type::crypto);
    CHECK((*frames)[1].crypto_offset == 0);
    CHECK((*frames)[1].data.size() == 90);
    auto hello = parse_server_hello((*frames)[1].data);
    REQUIRE(hello);
    CHECK(hello->cipher_suite == 0x1301);
    CHECK(cipher_suite_name(hello->cipher_suite) == "TLS_AES_128_GCM_SHA256");
    CHECK(hello->legacy_version == 0x0303);
    CHECK(hello->selected_version == tls::kTls13);
    CHECK(hello->key_share_group == 0x001d);
    CHECK_FALSE(hello->hello_retry_request);
    CHECK(hello->extension_types == std::vector<std::uint16_t>{51, 43});
}

}  // namespace

TEST_CASE("RFC 9001 A.2/A.3: v1 client and server Initial") {
    check_initial_vector({kVersion1, kV1ClientInitial, "c300000001088394c8f03e5157080000449e00000002",
                          kV1ServerInitial, "c1000000010008f067a5502a4262b50040750001"});
}

TEST_CASE("RFC 9369 A.2/A.3: v2 client and server Initial") {
    check_initial_vector({kVersion2, kV2ClientInitial, "d36b3343cf088394c8f03e5157080000449e00000002",
                          kV2ServerInitial, "d16b3343cf0008f067a5502a4262b50040750001"});
}

TEST_CASE("header protection masks match the RFC intermediate values") {
    auto k1 = derive_initial_keys(kVersion1, kDcid);
    REQUIRE(k1);
    auto m = header_protection_mask(Cipher::aes_128_gcm, k1->client.hp, hex("d1b1c98dd7689fb8ec11d242b123dc9b"));
    REQUIRE(m);
    CHECK(to_buf(*m) == hex("437b9aec36"));
    m = header_protection_mask(Cipher::aes_128_gcm, k1->server.hp, hex("2cd0991cd25b0aac406a5816b6394100"));
    REQUIRE(m);
    CHECK(to_buf(*m) == hex("2ec0d8356a"));
    auto k2 = derive_initial_keys(kVersion2, kDcid);
    REQUIRE(k2);
    m = header_protection_mask(Cipher::aes_128_gcm, k2->client.hp, hex("ffe67b6abcdb4298b485dd04de806071"));
    REQUIRE(m);
    CHECK(to_buf(*m) == hex("94a0c95e80"));
    // Short sample or wrong key size is rejected, not read past.
    CHECK_FALSE(header_protection_mask(Cipher::aes_128_gcm, k1->client.hp, hex("00")));
    CHECK_FALSE(header_protection_mask(Cipher::chacha20_poly1305, k1->client.hp, Buf(16)));
}

TEST_CASE("Retry integrity tag: RFC 9001 A.4 (v1) and RFC 9369 A.4 (v2)") {
    for (auto vt : {std::pair{kVersion1, kV1Retry}, std::pair{kVersion2, kV2Retry}}) {
        auto version = vt.first;  // not a structured binding: clang 14 cannot capture those
        auto text = vt.second;
        CAPTURE(version);
        Buf pkt = hex(text);
        auto h = parse_packet_header(pkt);
        REQUIRE(h);
        CHECK(h->type == PacketType::retry);
        CHECK(h->version == version);
        CHECK(h->dcid.empty());
        CHECK(to_buf(h->scid) == hex("f067a5502a4262b5"));
        CHECK(std::string(h->token.begin(), h->token.end()) == "token");
        CHECK(h->retry_tag.size() == 16);
        CHECK(verify_retry(*h, kDcid));
        // Wrong original DCID fails.
        CHECK_FALSE(verify_retry(*h, hex("8394c8f03e515709")));
        // Any flipped bit anywhere (except the form bit, which changes the parse) fails.
        for (std::size_t i = 0; i < pkt.size(); ++i) {
            for (int bit = 0; bit < 8; ++bit) {
                if (i == 0 && bit == 7) continue;
                Buf bad = pkt;
                bad[i] ^= static_cast<std::uint8_t>(1u << bit);
                auto bh = parse_packet_header(bad);
                if (bh && bh->type == PacketType::retry) CHECK_FALSE(verify_retry(*bh, kDcid));
            }
        }
    }
}

TEST_CASE("Retry tag round trip for v2 draft and draft-29") {
    for (std::uint32_t v : {kVersion2Draft, kVersionDraft29}) {
        Buf pkt;
        pkt.push_back(static_cast<std::uint8_t>(0xc0 | long_type_to_bits(v, LongType::retry) << 4));
        for (int s = 24; s >= 0; s -= 8) pkt.push_back(static_cast<std::uint8_t>(v >> s));
        pkt.push_back(0);
        pkt.push_back(8);
        for (auto b : hex("f067a5502a4262b5746f6b656e")) pkt.push_back(b);
        auto tag = retry_integrity_tag(v, kDcid, pkt);
        REQUIRE(tag);
        pkt.insert(pkt.end(), tag->begin(), tag->end());
        auto h = parse_packet_header(pkt);
        REQUIRE(h);
        CHECK(h->type == PacketType::retry);
        CHECK(verify_retry(*h, kDcid));
        // Keys differ per version: the v1 tag must not verify under this version.
        auto v1tag = retry_integrity_tag(kVersion1, kDcid, Bytes(pkt).first(pkt.size() - 16));
        REQUIRE(v1tag);
        CHECK(*v1tag != *tag);
    }
}

TEST_CASE("A.5 ChaCha20-Poly1305 short header (v1 and v2)") {
    struct C {
        std::uint32_t version;
        const char* key;
        const char* iv;
        const char* hp;
        const char* packet;
    };
    for (const C& c :
         {C{kVersion1, "c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8",
            "e0459b3474bdd0e44a41c144", "25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4",
            "4cfe4189655e5cd55c41f69080575d7999c25a5bfb"},
          C{kVersion2, "3bfcddd72bcf02541d7fa0dd1f5f9eeea817e09a6963a0e6c7df0f9a1bab90f2",
            "a6b5bc6ab7dafce30ffff5dd", "d659760d2ba434a226fd37b35c69e2da8211d10c4f12538787d65645d5d1b8e2",
            "5558b1c60ae7b6b932bc27d786f4bc2bb20f2162ba"}}) {
        CAPTURE(c.version);
        auto keys = derive_packet_keys(c.version, Cipher::chacha20_poly1305, hex(kChachaSecret));
        REQUIRE(keys);
        CHECK(keys->key == hex(c.key));
        CHECK(keys->iv == hex(c.iv));
        CHECK(keys->hp == hex(c.hp));

        const Buf pkt = hex(c.packet);
        auto h = parse_packet_header(pkt, 0);
        REQUIRE(h);
        CHECK(h->type == PacketType::one_rtt);
        CHECK(h->pn_offset == 1);
        auto opened = open_packet(h->packet, h->pn_offset, *keys, 654360563);
        REQUIRE(opened);
        CHECK(opened->header == hex("4200bff4"));
        CHECK(opened->packet_number == 654360564);
        CHECK(opened->pn_length == 3);
        CHECK(opened->payload == hex("01"));
        auto frames = parse_frames(opened->payload);
        REQUIRE(frames);
        REQUIRE(frames->size() == 1);
        CHECK((*frames)[0].type == frame_type::ping);

        auto sealed = seal_packet(hex("4200bff4"), 1, 654360564, hex("01"), *keys);
        REQUIRE(sealed);
        CHECK(*sealed == pkt);
    }
}

TEST_CASE("packet number decoding: RFC 9000 A.3") {
    CHECK(decode_packet_number(0xa82f30ea, 0x9b32, 2) == 0xa82f9b32);
    CHECK(decode_packet_number(0, 0, 1) == 0);
    CHECK(decode_packet_number(0, 2, 4) == 2);
    CHECK(decode_packet_number(254, 0x01, 1) == 257);  // wraps forward
    CHECK(decode_packet_number(300, 0xff, 1) == 255);  // just behind expected
    CHECK(decode_packet_number((1ULL << 62) - 2, 0xff, 1) <= (1ULL << 62) - 1);
}

TEST_CASE("ClientHello from RFC 9001 A.2") {
    const Buf payload = client_payload();  // frames hold views into it
    auto frames = parse_frames(payload);
    REQUIRE(frames);
    REQUIRE(frames->size() == 2);  // CRYPTO + one collapsed PADDING run
    CHECK((*frames)[0].type == frame_type::crypto);
    CHECK((*frames)[1].type == frame_type::padding);
    CHECK((*frames)[1].size == 1162 - 245);
    const Frame& cf = (*frames)[0];
    CHECK(cf.crypto_offset == 0);
    CHECK(cf.data.size() == 241);

    auto ch = parse_client_hello(cf.data);
    REQUIRE(ch);
    CHECK(ch->legacy_version == 0x0303);
    CHECK(ch->session_id.empty());
    CHECK(ch->cipher_suites == std::vector<std::uint16_t>{0x1301, 0x1302});
    CHECK(ch->sni == "example.com");
    CHECK(ch->alpn == std::vector<std::string>{"alpn"});  // the RFC sample offers "alpn"
    CHECK(ch->supported_versions == std::vector<std::uint16_t>{tls::kTls13});
    CHECK(ch->key_share_groups == std::vector<std::uint16_t>{0x001d});
    CHECK(named_group_name(ch->key_share_groups[0]) == "x25519");
    CHECK(ch->supported_groups == std::vector<std::uint16_t>{0x001d, 0x0017, 0x0018});
    CHECK(ch->signature_algorithms.size() == 7);
    CHECK(ch->extension_types ==
          std::vector<std::uint16_t>{0, 0xff01, 10, 16, 5, 51, 43, 13, 45, 28, 57});
    REQUIRE(ch->has_transport_params);

    struct Tp { std::uint64_t id; std::string_view name; std::uint64_t value; };
    const Tp expected[] = {
        {0x04, "initial_max_data", 0x3fffffffffffffffULL},
        {0x05, "initial_max_stream_data_bidi_local", 0xffff},
        {0x07, "initial_max_stream_data_uni", 0xffff},
        {0x08, "initial_max_streams_bidi", 16},
        {0x01, "max_idle_timeout", 30000},
        {0x09, "initial_max_streams_uni", 16},
        {0x0f, "initial_source_connection_id", 0},
        {0x06, "initial_max_stream_data_bidi_remote", 0xffff},
    };
    REQUIRE(ch->transport_params.size() == std::size(expected));
    for (std::size_t i = 0; i < std::size(expected); ++i) {
        const auto& tp = ch->transport_params[i];
        CAPTURE(i);
        CHECK(tp.id == expected[i].id);
        CHECK(tp.name == expected[i].name);
        if (tp.id == 0x0f) {
            CHECK_FALSE(tp.integer);
            CHECK(to_buf(tp.value) == kDcid);
        } else {
            REQUIRE(tp.integer);
            CHECK(*tp.integer == expected[i].value);
        }
    }

    // A truncated message asks for more data instead of failing hard.
    CHECK(parse_client_hello(cf.data.first(100)).error == Error::truncated);
    // A ServerHello parser refuses a ClientHello.
    CHECK(parse_server_hello(cf.data).error == Error::not_found);
}

TEST_CASE("ClientHello split over two Initial packets, delivered out of order") {
    const Buf crypto = hex(kClientCryptoFrame);
    const Bytes hello = Bytes(crypto).subspan(4);  // skip frame type, offset, 2-byte length
    REQUIRE(hello.size() == 241);
    auto keys = derive_initial_keys(kVersion1, kDcid);
    REQUIRE(keys);

    const Buf scid = hex("c0ffee");
    auto make_packet = [&](std::uint64_t pn, std::uint64_t off, Bytes part) {
        Buf payload{0x06};
        encode_varint(off, payload);
        encode_varint(part.size(), payload);
        payload.insert(payload.end(), part.begin(), part.end());
        payload.push_back(0x01);  // PING after the CRYPTO frame
        payload.resize(1162, 0);
        LongPacketSpec spec;
        spec.dcid = kDcid;
        spec.scid = scid;
        spec.packet_number = pn;
        spec.pn_length = 2;
        spec.payload = payload;
        auto p = build_long_packet(spec, keys->client);
        REQUIRE(p);
        return *p;
    };
    const Buf second = make_packet(0, 120, hello.subspan(120));
    const Buf first = make_packet(1, 0, hello.first(130));  // overlaps 10 bytes

    ClientHelloSniffer sniffer;
    // A corrupted Initial first must not pin the sniffer to bad keys.
    Buf spoof = second;
    spoof[10] ^= 0xff;  // inside the DCID
    CHECK(sniffer.feed(spoof) == Error::crypto);
    CHECK(sniffer.feed(Buf{}) == Error::truncated);
    CHECK(sniffer.feed(second) == Error::ok);
    CHECK_FALSE(sniffer.complete());
    CHECK(sniffer.feed(first) == Error::ok);
    REQUIRE(sniffer.complete());
    CHECK(sniffer.initial_packets() == 2);
    CHECK(sniffer.version() == kVersion1);
    CHECK(sniffer.original_dcid() == kDcid);
    CHECK(sniffer.client_hello().sni == "example.com");
    CHECK(sniffer.client_hello().transport_params.size() == 8);

    // The real RFC packet is enough on its own.
    ClientHelloSniffer one;
    CHECK(one.feed(hex(kV1ClientInitial)) == Error::ok);
    CHECK(one.complete());
    ClientHelloSniffer two;
    CHECK(two.feed(hex(kV2ClientInitial)) == Error::ok);
    CHECK(two.complete());
    CHECK(two.version() == kVersion2);
    CHECK(two.client_hello().sni == "example.com");
}

TEST_CASE("CRYPTO reassembler: order, overlap, gaps, cap") {
    CryptoReassembler r(64);
    const Buf data = hex("000102030405060708090a0b0c0d0e0f");
    CHECK(r.add(8, Bytes(data).subspan(8, 4)) == Error::ok);
    CHECK(r.contiguous().empty());
    CHECK(r.has_gaps());
    CHECK(r.add(0, Bytes(data).first(4)) == Error::ok);
    CHECK(r.contiguous().size() == 4);
    CHECK(r.add(2, Bytes(data).subspan(2, 8)) == Error::ok);  // overlaps both sides, fills gap
    CHECK(r.contiguous().size() == 12);
    CHECK_FALSE(r.has_gaps());
    // Conflicting retransmission: the first copy wins.
    const Buf junk(4, 0xee);
    CHECK(r.add(0, junk) == Error::ok);
    CHECK(to_buf(r.contiguous()) == to_buf(Bytes(data).first(12)));
    CHECK(r.received_bytes() == 12);
    CHECK(r.add(0, {}) == Error::ok);
    // Beyond the cap is rejected without allocating.
    CHECK(r.add(60, data) == Error::too_large);
    CHECK(r.add(1ULL << 61, data) == Error::too_large);
    CHECK(r.add(48, data) == Error::ok);  // exactly up to the cap
}

TEST_CASE("frames: ACK ranges, CONNECTION_CLOSE, skipping and unknown types") {
    // ACK(largest 10, delay 2, 1 range, first 3, gap 1, len 2), CONNECTION_CLOSE, STREAM, unknown.
    const Buf p = hex("020a0201030102" "1c0a0603626164" "0f0401 02 6869" "01");
    auto frames = parse_frames(p);
    REQUIRE(frames);
    REQUIRE(frames->size() == 4);
    CHECK((*frames)[0].largest_acked == 10);
    CHECK((*frames)[0].ack_delay == 2);
    CHECK((*frames)[0].first_ack_range == 3);
    REQUIRE((*frames)[0].ack_ranges.size() == 1);
    CHECK((*frames)[0].ack_ranges[0].gap == 1);
    CHECK((*frames)[0].ack_ranges[0].length == 2);
    CHECK((*frames)[1].type == frame_type::connection_close);
    CHECK((*frames)[1].error_code == 0x0a);
    CHECK((*frames)[1].frame_type_field == 0x06);
    CHECK(std::string((*frames)[1].data.begin(), (*frames)[1].data.end()) == "bad");
    CHECK(frame_type_name((*frames)[2].type) == "STREAM");
    CHECK((*frames)[2].data.size() == 2);
    CHECK((*frames)[3].type == frame_type::ping);

    std::vector<Frame> partial;
    CHECK(parse_frames_partial(hex("01 01 21 01"), partial) == Error::unknown_frame);
    CHECK(partial.size() == 2);
    CHECK(parse_frames(hex("06 00 05 0102")).error == Error::truncated);
    CHECK(parse_frames(hex("02 00 00 ff")).error == Error::truncated);  // ACK range count huge
    CHECK(parse_frames(hex("18 01 00 00")).error == Error::invalid);  // NEW_CONNECTION_ID, empty CID
    CHECK(parse_frames(hex("1e 1a 0102030405060708 1d 00 00")).ok());
}

TEST_CASE("Version Negotiation, unknown versions and coalesced datagrams") {
    const Buf vn = hex("80 00000000 04 01020304 02 0506 00000001 6b3343cf 1a2a3a4a");
    auto h = parse_packet_header(vn);
    REQUIRE(h);
    CHECK(h->type == PacketType::version_negotiation);
    CHECK(h->supported_versions == std::vector<std::uint32_t>{kVersion1, kVersion2, 0x1a2a3a4a});
    CHECK(parse_packet_header(hex("80 00000000 00 00 000000")).error == Error::invalid);

    // Unknown version: CIDs up to 255 bytes are legal (RFC 8999).
    Buf unk = hex("c0 12345678 1e");
    unk.resize(unk.size() + 30, 0xab);
    unk.push_back(0);
    unk.push_back(0x99);
    h = parse_packet_header(unk);
    REQUIRE(h);
    CHECK(h->type == PacketType::unknown_long);
    CHECK(h->dcid.size() == 30);
    // ... but v1 limits them to 20.
    Buf longcid = unk;
    longcid[1] = 0;
    longcid[2] = 0;
    longcid[3] = 0;
    longcid[4] = 1;
    CHECK(parse_packet_header(longcid).error == Error::invalid);

    // Server Initial coalesced with a short header packet, then zero padding.
    Buf dgram = hex(kV1ServerInitial);
    const std::size_t initial_len = dgram.size();
    for (auto b : hex("4c fe4189655e5cd55c41f69080575d7999c25a5bfb")) dgram.push_back(b);
    auto d = split_datagram(dgram, 0);
    REQUIRE(d);
    REQUIRE(d->packets.size() == 2);
    CHECK(d->packets[0].type == PacketType::initial);
    CHECK(d->packets[0].size == initial_len);
    CHECK(d->packets[1].type == PacketType::one_rtt);
    CHECK(d->trailing_bytes == 0);

    Buf padded = hex(kV1ServerInitial);
    padded.resize(1200, 0);
    d = split_datagram(padded, 0);
    REQUIRE(d);
    CHECK(d->packets.size() == 1);
    CHECK(d->trailing_bytes == 1200 - initial_len);

    // v1 client Initial + v1 server Initial coalesced (both long headers).
    Buf two = hex(kV1ClientInitial);
    for (auto b : hex(kV1ServerInitial)) two.push_back(b);
    d = split_datagram(two);
    REQUIRE(d);
    REQUIRE(d->packets.size() == 2);
    CHECK(open_initial(d->packets[0], kDcid, true).ok());
    CHECK(open_initial(d->packets[1], kDcid, false).ok());

    CHECK(split_datagram({}).error == Error::truncated);
    CHECK(parse_packet_header(hex("40 0102"), 8).error == Error::truncated);
    CHECK(parse_packet_header(hex("40"), 21).error == Error::invalid);
}

TEST_CASE("truncating the protected A.2 packet at every length fails cleanly") {
    for (std::string_view text : {kV1ClientInitial, kV2ClientInitial}) {
        const Buf pkt = hex(text);
        auto keys = derive_initial_keys(pkt[1] == 0 ? kVersion1 : kVersion2, kDcid);
        REQUIRE(keys);
        for (std::size_t n = 0; n < pkt.size(); ++n) {
            // Exact-size heap copy so ASan catches any read past the end.
            const Buf cut(pkt.begin(), pkt.begin() + static_cast<std::ptrdiff_t>(n));
            auto h = parse_packet_header(cut);
            CHECK_FALSE(h.ok());
            auto d = split_datagram(cut);
            CHECK_FALSE(d.ok());
            CHECK_FALSE(open_packet(cut, 18, keys->client).ok());
            ClientHelloSniffer s;
            s.feed(cut);
            CHECK_FALSE(s.complete());
        }
        CHECK(open_packet(pkt, 18, keys->client).ok());
    }
}

TEST_CASE("100k random and mutated datagrams never crash the parse/decrypt path") {
    std::mt19937_64 rng(0x5eed);
    const Buf base = hex(kV1ClientInitial);
    const Buf base2 = hex(kV2ServerInitial);
    const Buf vn = hex("80 00000000 04 01020304 02 0506 00000001");
    std::size_t parsed = 0, opened = 0, reused_differs = 0;
    Datagram reused;                  // split_datagram's in-place form, one object for every datagram
    std::vector<TransportParam> tps;  // parse_transport_params's in-place form
    for (int iter = 0; iter < 100000; ++iter) {
        Buf d;
        switch (iter % 4) {
            case 0: {  // pure noise, random length
                d.resize(rng() % 1500);
                for (auto& b : d) b = static_cast<std::uint8_t>(rng());
                break;
            }
            case 1:  // mutate a real client Initial
            case 2: {
                d = (iter % 4 == 1) ? base : base2;
                const int flips = 1 + static_cast<int>(rng() % 8);
                for (int i = 0; i < flips; ++i) d[rng() % d.size()] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
                if (rng() % 2) d.resize(rng() % (d.size() + 1));
                break;
            }
            default: {  // valid-looking long header prefix then noise
                d = (rng() % 2) ? vn : Buf{0xc0, 0, 0, 0, 1};
                d.resize(5 + rng() % 64);
                for (std::size_t i = 5; i < d.size(); ++i) d[i] = static_cast<std::uint8_t>(rng() % 24);
                break;
            }
        }
        const std::size_t short_len = rng() % 21;
        auto dg = split_datagram(d, short_len);
        // The in-place forms give the same results as the allocating ones.
        const Error e = split_datagram(d, short_len, reused);
        if (e != (dg ? Error::ok : dg.error)) ++reused_differs;
        else if (dg && (reused.trailing_bytes != dg->trailing_bytes || reused.packets.size() != dg->packets.size()))
            ++reused_differs;
        else if (dg)
            for (std::size_t i = 0; i < dg->packets.size(); ++i)
                if (reused.packets[i].packet.data() != dg->packets[i].packet.data() ||
                    reused.packets[i].size != dg->packets[i].size || reused.packets[i].type != dg->packets[i].type)
                    ++reused_differs;
        {
            auto tp = parse_transport_params(d);
            const Error te = parse_transport_params(d, tps);
            if (te != (tp ? Error::ok : tp.error) || (tp && tps.size() != tp->size())) ++reused_differs;
        }
        if (!dg) continue;
        ++parsed;
        for (const auto& h : dg->packets) {
            if (h.type == PacketType::retry) (void)verify_retry(h, kDcid);
            if (h.type != PacketType::initial) continue;
            auto o = open_initial(h, h.dcid, true);
            if (!o) o = open_initial(h, kDcid, false);
            if (!o) continue;
            ++opened;
            auto frames = parse_frames(o->payload);
            if (!frames) continue;
            for (const auto& f : *frames)
                if (f.type == frame_type::crypto) {
                    (void)parse_client_hello(f.data);
                    (void)parse_server_hello(f.data);
                }
        }
        // The TLS and transport parameter parsers also take raw noise.
        (void)parse_client_hello(d);
        (void)parse_transport_params(d);
        (void)parse_frames(d);
        ClientHelloSniffer s;
        (void)s.feed(d);
    }
    CHECK(parsed > 0);
    CHECK(opened > 0);  // unmutated tails of the base packets still decrypt sometimes
    CHECK(reused_differs == 0);
}

TEST_CASE("v2 long header types are remapped; v2 draft Initial round trip") {
    // Same type bits 0b11: Retry in v1, Handshake in v2 (RFC 9369 3.2).
    const Buf v1 = hex("f0 00000001 00 00 746f6b 00000000000000000000000000000000");
    auto h1 = parse_packet_header(v1);
    REQUIRE(h1);
    CHECK(h1->type == PacketType::retry);
    CHECK(h1->token.size() == 3);
    CHECK_FALSE(verify_retry(*h1, kDcid));
    Buf v2hs = hex("f0 6b3343cf 01 aa 00 14");
    v2hs.resize(v2hs.size() + 20, 0x55);
    v2hs.push_back(0x77);  // next coalesced packet starts here
    auto h2 = parse_packet_header(v2hs);
    REQUIRE(h2);
    CHECK(h2->type == PacketType::handshake);
    CHECK(h2->token.empty());
    CHECK(h2->length == 20);
    CHECK(h2->pn_offset == 9);
    CHECK(h2->size == 29);
    CHECK(packet_type_name(h2->type) == "Handshake");

    // Build and open a v2-draft Initial (what ngtcp2 0.12's 0x709a50c4 speaks).
    auto keys = derive_initial_keys(kVersion2Draft, kDcid);
    REQUIRE(keys);
    const Buf payload = client_payload();
    const Buf token = hex("746f6b656e");
    LongPacketSpec spec;
    spec.version = kVersion2Draft;
    spec.dcid = kDcid;
    spec.token = token;
    spec.packet_number = 7;
    spec.pn_length = 1;
    spec.payload = payload;
    auto pkt = build_long_packet(spec, keys->client);
    REQUIRE(pkt);
    CHECK(((*pkt)[0] & 0x30) == 0x10);  // Initial is 0b01 in v2
    auto h = parse_packet_header(*pkt);
    REQUIRE(h);
    CHECK(h->type == PacketType::initial);
    CHECK(to_buf(h->token) == token);
    auto opened = open_initial(*h, h->dcid, true);
    REQUIRE(opened);
    CHECK(opened->packet_number == 7);
    CHECK(opened->payload == payload);
    // The same bytes relabelled as v1 do not decrypt (different salt and labels).
    Buf relabel = *pkt;
    relabel[1] = 0; relabel[2] = 0; relabel[3] = 0; relabel[4] = 1;
    auto hr = parse_packet_header(relabel);
    if (hr && hr->type == PacketType::initial) CHECK_FALSE(open_initial(*hr, hr->dcid, true).ok());
    // Retry cannot be built as a protected packet.
    spec.type = LongType::retry;
    CHECK(build_long_packet(spec, keys->client).error == Error::invalid);
}
