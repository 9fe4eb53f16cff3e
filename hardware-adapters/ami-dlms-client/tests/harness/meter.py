"""A DLMS/COSEM meter for the client's tests, built on the gurux-dlms server classes.

It is an independent implementation of the server side: the Rust client under test talks to
it over TCP, either with the IEC 62056-47 wrapper or with HDLC frames. The meter has

* a clock (0-0:1.0.0.255) that runs from the time it was last set,
* registers 1-0:1.8.0.255 (Wh), 1-0:2.8.0.255 (Wh) and 1-0:32.7.0.255 (V, scaler -1),
* a load profile 1-0:99.1.0.255 of (clock, 1-0:1.8.0.255) with 96 quarter-hour entries of
  2026-01-01 UTC (value 1000 + 10 * i at 00:15 + 15 min * i), read by range over the clock,
* a disconnect control 0-0:96.3.10.255 (methods 1 and 2 switch output_state),
* an image transfer 0-0:44.0.0.255 (initiate, block transfer, verify against the blocks
  received, activate),
* an activity calendar 0-0:13.0.0.255 (passive day profiles; activate copies them over),
* the association 0-0:40.0.0.255 with the password of `--password` (LLS) or HLS-GMAC with the
  keys and system title given.

It prints `READY <port>` once it listens (port 0 picks a free one) and serves connections one
after the other until killed. The meter's state lives across connections. With the tests'
`METER_LOG=1` its log (every request and answer in hex, gurux tracebacks) goes to stderr.

gurux-dlms 1.0.203's server classes do not run as published: the patches below (each with
its reason) supply what its own code calls but lacks. They touch only the server's
plumbing; the framing, ciphering and APDU handling the client is tested against stay
gurux's.

Usage: meter.py --framing hdlc|wrapper --auth lls|gmac [--port N] [--password P]
                [--system-title HEX] [--block-key HEX] [--auth-key HEX]
"""

import argparse
import datetime
import socket
import sys

from gurux_dlms import GXDateTime, GXServerReply
from gurux_dlms.enums import (
    Authentication,
    DataType,
    ErrorCode,
    InterfaceType,
    ObjectType,
    Security,
    SourceDiagnostic,
)
from gurux_dlms.internal._GXCommon import _GXCommon
from gurux_dlms.GXByteBuffer import GXByteBuffer
from gurux_dlms.objects import (
    GXDLMSActivityCalendar,
    GXDLMSAssociationLogicalName,
    GXDLMSCaptureObject,
    GXDLMSClock,
    GXDLMSDisconnectControl,
    GXDLMSImageTransfer,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)
from gurux_dlms.objects.enums import ControlState
from gurux_dlms.objects.enums.ImageTransferStatus import ImageTransferStatus
from gurux_dlms.secure import GXDLMSSecureServer

from gurux_dlms.GXDLMSLNParameters import GXDLMSLNParameters

# gurux-dlms 1.0.203's SET handler calls accessors its parameter class lacks.
if not hasattr(GXDLMSLNParameters, "isMultipleBlocks"):
    GXDLMSLNParameters.isMultipleBlocks = lambda self: self.multipleBlocks
    GXDLMSLNParameters.setStatus = lambda self, v: setattr(self, "status", v)
# ... and makes the list of one write or action with `list(e)`.
from gurux_dlms.ValueEventArgs import ValueEventArgs

if not hasattr(ValueEventArgs, "__iter__"):
    ValueEventArgs.__iter__ = lambda self: iter([self])

# ... and, answering a ciphered or HLS-GMAC AARQ, writes the responding AP title's inner
# length with no value: the only call of that kind, so the missing value is the system
# title's length (8).
_set_uint8 = GXByteBuffer.setUInt8


def _set_uint8_or_title_length(self, item=None, index=None):
    return _set_uint8(self, 8 if item is None else item, index)


GXByteBuffer.setUInt8 = _set_uint8_or_title_length

# ... and copies the HDLC settings onto themselves at SNRM through a method they lack.
from gurux_dlms.GXHdlcSettings import GXHdlcSettings

if not hasattr(GXHdlcSettings, "update"):
    GXHdlcSettings.update = lambda self, other: None

from gurux_dlms._GXAPDU import _GXAPDU

_parse_pdu = _GXAPDU.parsePDU


def _logged_parse_pdu(*args):
    try:
        return _parse_pdu(*args)
    except Exception as e:
        import traceback

        print("AARQ refused:", traceback.format_exc(), file=sys.stderr, flush=True)
        raise


_GXAPDU.parsePDU = _logged_parse_pdu
_parse_ui = _GXAPDU.parseUserInformation


def _logged_parse_ui(*args):
    try:
        return _parse_ui(*args)
    except Exception:
        import traceback

        print("user-information refused:", traceback.format_exc(), file=sys.stderr, flush=True)
        raise


_GXAPDU.parseUserInformation = _logged_parse_ui

from gurux_dlms.GXDLMS import GXDLMS

_get_data = GXDLMS.getData


def _logged_get_data(*args):
    try:
        return _get_data(*args)
    except Exception:
        import traceback

        print("request refused:", traceback.format_exc(), file=sys.stderr, flush=True)
        raise


GXDLMS.getData = _logged_get_data

# ... and builds the parameters of a ciphered request without their tag (system title, key,
# key): take that form as tag 0.
_gxdlms_module = sys.modules["gurux_dlms.GXDLMS"]
from gurux_dlms.AesGcmParameter import AesGcmParameter


def _aes_gcm_parameter(*args):
    if len(args) == 3 and not isinstance(args[0], int):
        return AesGcmParameter(0, *args)
    return AesGcmParameter(*args)


_gxdlms_module.AesGcmParameter = _aes_gcm_parameter

# ... and asks the association object for its status through a method it lacks.
if not hasattr(GXDLMSAssociationLogicalName, "getAssociationStatus"):
    GXDLMSAssociationLogicalName.getAssociationStatus = lambda self: self.associationStatus

# ... and sets the connection state of its settings through a method they lack.
from gurux_dlms.GXDLMSSettings import GXDLMSSettings

if not hasattr(GXDLMSSettings, "setConnected"):
    GXDLMSSettings.setConnected = lambda self, v: setattr(self, "connected", v)

UTC = datetime.timezone.utc
PROFILE_START = datetime.datetime(2026, 1, 1, 0, 15, tzinfo=UTC)


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class HdlcView:
    """What the meter's UA says: the sizes the client's SNRM proposed (the smaller of its
    transmit and receive), window 1, no inactivity timeout."""

    def __init__(self, settings):
        self.settings = settings
        self.inactivityTimeout = 0

    def _info(self):
        h = self.settings.hdlc
        return min(h.maxInfoTX, h.maxInfoRX)

    maxInfoTX = property(_info)
    maxInfoRX = property(_info)
    maximumInfoLengthReceive = property(_info)
    maximumInfoLengthTransmit = property(_info)
    windowSizeTX = 1
    windowSizeRX = 1
    windowSizeReceive = 1
    windowSizeTransmit = 1


class Meter(GXDLMSSecureServer):
    def __init__(self, args):
        framing = InterfaceType.HDLC if args.framing == "hdlc" else InterfaceType.WRAPPER
        self.association = GXDLMSAssociationLogicalName()
        super().__init__(self.association, framing)
        self.args = args
        if args.auth == "lls":
            self.association.authenticationMechanismName.mechanismId = Authentication.LOW
            self.association.secret = args.password.encode()
        else:
            self.association.authenticationMechanismName.mechanismId = Authentication.HIGH_GMAC
            c = self.getCiphering()
            c.systemTitle = bytearray.fromhex(args.system_title)
            c.blockCipherKey = bytearray.fromhex(args.block_key)
            c.authenticationKey = bytearray.fromhex(args.auth_key)
            c.security = Security.AUTHENTICATION_ENCRYPTION
            # gurux-dlms 1.0.203's secure server keeps its ciphering under a name the rest
            # of the library does not read.
            self.settings.cipher = c
        # gurux-dlms 1.0.203 answers SNRM from `self.hdlc`, reading both the negotiated
        # sizes and the HDLC setup object's names from it: a view on what SNRM negotiated.
        self.hdlc = HdlcView(self.settings)
        # ... and reads the GBT window size of long reads under a misspelt name.
        self.settings.gbtWndowSize = self.settings.gbtWindowSize
        # Small PDUs so that long answers come as data blocks.
        self.settings.maxServerPDUSize = args.max_pdu

        self.clock = GXDLMSClock("0.0.1.0.0.255")
        self.clock_set = datetime.datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
        self.clock_set_at = datetime.datetime.now(UTC)
        self.clock.timeZone = 0
        self.items.append(self.clock)

        self.energy = GXDLMSRegister("1.0.1.8.0.255")
        self.energy.value = 123456
        self.energy.scaler = 1
        self.energy.unit = 30
        self.export = GXDLMSRegister("1.0.2.8.0.255")
        self.export.value = 7890
        self.export.scaler = 1
        self.export.unit = 30
        self.voltage = GXDLMSRegister("1.0.32.7.0.255")
        self.voltage.value = 2301
        self.voltage.scaler = 0.1
        self.voltage.unit = 35
        for r in (self.energy, self.export, self.voltage):
            self.items.append(r)

        self.profile = GXDLMSProfileGeneric("1.0.99.1.0.255")
        self.profile.captureObjects.append((self.clock, GXDLMSCaptureObject(2, 0)))
        self.profile.captureObjects.append((self.energy, GXDLMSCaptureObject(2, 0)))
        self.profile.capturePeriod = 900
        for i in range(96):
            t = PROFILE_START + datetime.timedelta(minutes=15 * i)
            self.profile.buffer.append([GXDateTime(t), 1000 + 10 * i])
        self.profile.entriesInUse = len(self.profile.buffer)
        self.profile.profileEntries = 1000
        self.items.append(self.profile)

        self.relay = GXDLMSDisconnectControl("0.0.96.3.10.255")
        self.relay.outputState = True
        self.relay.controlState = ControlState.CONNECTED
        self.relay.controlMode = 1
        self.items.append(self.relay)

        self.image = GXDLMSImageTransfer("0.0.44.0.0.255")
        self.image.imageBlockSize = 64
        self.image.imageTransferEnabled = True
        self.image.imageTransferStatus = ImageTransferStatus.IMAGE_TRANSFER_NOT_INITIATED
        self.image_blocks = {}
        self.image_size = 0
        self.image_id = b""
        self.items.append(self.image)

        self.calendar = GXDLMSActivityCalendar("0.0.13.0.0.255")
        self.items.append(self.calendar)

        self.items.append(self.association)
        # gurux-dlms 1.0.203's association object cannot read the HLS reply (it calls int()
        # on the octet string): the check is done here with the library's own GMAC.
        self.association.invoke = self.reply_to_hls
        for it in self.items:
            self.association.objectList.append(it)
        self.initialize()

    def handleCommand(self, *args):
        try:
            return super().handleCommand(*args)
        except Exception:
            import traceback

            log(traceback.format_exc())
            raise

    # --- access -------------------------------------------------------------------------
    def isTarget(self, serverAddress, clientAddress):
        return True

    def onValidateAuthentication(self, authentication, password):
        if self.args.auth == "lls":
            if authentication != Authentication.LOW:
                return SourceDiagnostic.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED
            if bytes(password or b"") != self.args.password.encode():
                log("wrong password", password)
                return SourceDiagnostic.AUTHENTICATION_FAILURE
            return SourceDiagnostic.NONE
        if authentication != Authentication.HIGH_GMAC:
            return SourceDiagnostic.AUTHENTICATION_MECHANISM_NAME_NOT_RECOGNISED
        return SourceDiagnostic.NONE

    def onGetAttributeAccess(self, arg):
        from gurux_dlms.enums import AccessMode

        # gurux-dlms 1.0.203 reads without calling onPreRead with the request; this is the
        # last hook that sees it.
        self.onPreRead([arg])
        return AccessMode.READ_WRITE

    # Hooks gurux-dlms 1.0.203's command handler calls but its server class lacks.
    def notifyRead(self, *args):
        pass

    def notifyConnected(self, connectionInfo):
        self.onConnected(connectionInfo)

    def getTransaction(self):
        return self.transaction

    def setTransaction(self, value):
        self.transaction = value

    def onGetMethodAccess(self, arg):
        from gurux_dlms.enums import MethodAccessMode

        return MethodAccessMode.ACCESS

    def onFindObject(self, objectType, sn, ln):
        return None

    # --- reads --------------------------------------------------------------------------
    def now(self):
        return self.clock_set + (datetime.datetime.now(UTC) - self.clock_set_at)

    def onPreRead(self, args):
        for e in args:
            if e.target is self.clock and e.index == 2:
                self.clock.time = GXDateTime(self.now())
            elif e.target is self.profile and e.index == 2 and e.selector == 1:
                # Range over the clock column, done here: gurux compares datetimes with 0.
                params = e.parameters
                lo = self.dt(params[1])
                hi = self.dt(params[2])
                rows = [r for r in self.profile.buffer if lo <= r[0].value <= hi]
                log("range", lo, hi, len(rows))
                e.value = self.profile.getData(self.settings, e, rows, None)
                e.byteArray = True
                e.handled = True

    def dt(self, raw):
        from gurux_dlms.internal._GXDataInfo import _GXDataInfo

        info = _GXDataInfo()
        info.type_ = DataType.DATETIME
        return _GXCommon.getData(self.settings, GXByteBuffer(raw), info).value

    def onPostRead(self, args=None):
        pass

    def onPreGet(self, args):
        pass

    def onPostGet(self, args):
        pass

    # --- writes -------------------------------------------------------------------------
    def onPreWrite(self, args):
        for e in args:
            if e.target is self.clock and e.index == 2:
                v = e.value
                if isinstance(v, (bytes, bytearray)):
                    v = self.dt(v)
                elif isinstance(v, GXDateTime):
                    v = v.value
                self.clock_set = v.astimezone(UTC)
                self.clock_set_at = datetime.datetime.now(UTC)
                log("clock set", self.clock_set)
                e.handled = True

    def onPostWrite(self, args):
        pass

    def reply_to_hls(self, settings, e):
        from gurux_dlms.GXSecure import GXSecure
        from gurux_dlms.objects.enums import AssociationStatus

        if e.index != 1 or self.args.auth != "gmac":
            e.error = ErrorCode.READ_WRITE_DENIED
            return None
        got = bytes(e.parameters or b"")
        ic = int.from_bytes(got[1:5], "big") if len(got) >= 5 else 0
        cipher = settings.cipher
        want = bytes(
            GXSecure.secure(settings, cipher, ic, settings.stoCChallenge, settings.sourceSystemTitle)
        )
        if got != want:
            log("HLS reply does not verify")
            self.association.associationStatus = AssociationStatus.NON_ASSOCIATED
            return None
        self.association.associationStatus = AssociationStatus.ASSOCIATED
        log("HLS reply verified")
        return bytes(
            GXSecure.secure(
                settings, cipher, cipher.invocationCounter, settings.ctoSChallenge, cipher.systemTitle
            )
        )

    # --- actions ------------------------------------------------------------------------
    def onPreAction(self, args):
        for e in args:
            t, m = e.target, e.index
            if t is self.relay:
                if m == 1:
                    self.relay.outputState = False
                    self.relay.controlState = ControlState.DISCONNECTED
                elif m == 2:
                    self.relay.outputState = True
                    self.relay.controlState = ControlState.CONNECTED
                else:
                    e.error = ErrorCode.READ_WRITE_DENIED
                log("relay", self.relay.outputState)
                e.value = 0
                e.handled = True
            elif t is self.image:
                self.image_action(e)
                e.value = 0
                e.handled = True
            elif t is self.calendar:
                if m == 1:
                    c = self.calendar
                    c.calendarNameActive = c.calendarNamePassive
                    c.seasonProfileActive = c.seasonProfilePassive
                    c.weekProfileTableActive = c.weekProfileTablePassive
                    c.dayProfileTableActive = c.dayProfileTablePassive
                    log("calendar activated", len(c.dayProfileTableActive or []))
                else:
                    e.error = ErrorCode.READ_WRITE_DENIED
                e.value = 0
                e.handled = True

    def image_action(self, e):
        img, p = self.image, e.parameters
        if e.index == 1:
            self.image_id = bytes(p[0])
            self.image_size = int(p[1])
            self.image_blocks = {}
            img.imageFirstNotTransferredBlockNumber = 0
            img.imageTransferStatus = ImageTransferStatus.IMAGE_TRANSFER_INITIATED
            log("image initiate", self.image_id, self.image_size)
        elif e.index == 2:
            n = int(p[0])
            if img.imageTransferStatus != ImageTransferStatus.IMAGE_TRANSFER_INITIATED:
                e.error = ErrorCode.TEMPORARY_FAILURE
                return
            if n != img.imageFirstNotTransferredBlockNumber:
                e.error = ErrorCode.DATA_BLOCK_NUMBER_INVALID
                return
            self.image_blocks[n] = bytes(p[1])
            img.imageFirstNotTransferredBlockNumber = n + 1
        elif e.index == 3:
            data = b"".join(self.image_blocks[i] for i in sorted(self.image_blocks))
            if len(data) != self.image_size:
                img.imageTransferStatus = ImageTransferStatus.IMAGE_VERIFICATION_FAILED
                e.error = ErrorCode.OTHER_REASON
            else:
                img.imageTransferStatus = ImageTransferStatus.IMAGE_VERIFICATION_SUCCESSFUL
            log("image verify", len(data), img.imageTransferStatus)
        elif e.index == 4:
            if img.imageTransferStatus != ImageTransferStatus.IMAGE_VERIFICATION_SUCCESSFUL:
                e.error = ErrorCode.OTHER_REASON
            else:
                img.imageTransferStatus = ImageTransferStatus.IMAGE_ACTIVATION_SUCCESSFUL
            log("image activate", img.imageTransferStatus)
        else:
            e.error = ErrorCode.READ_WRITE_DENIED

    def onPostAction(self, args):
        pass

    def onConnected(self, connectionInfo):
        log("associated")

    def onInvalidConnection(self, connectionInfo):
        log("association refused")

    def onDisconnected(self, connectionInfo):
        log("released")


class Reply(GXServerReply):
    """GXServerReply as the server of gurux-dlms 1.0.203 calls it: that version's server
    uses accessors its own reply class lacks."""

    def setReply(self, value):
        self.reply = value

    def getConnectionInfo(self):
        return self.connectionInfo

    def getCount(self):
        return self.count

    def setCount(self, value):
        self.count = value


def serve(meter, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(1)
    print("READY", srv.getsockname()[1], flush=True)
    # gurux-dlms prints as it deciphers; the test reads only the READY line.
    sys.stdout = sys.stderr
    while True:
        conn, _ = srv.accept()
        meter.reset()
        with conn:
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    break
                if not data:
                    break
                sr = Reply(bytearray(data))
                while True:
                    meter.handleRequest(sr)
                    if sr.reply:
                        log("<-", bytes(data).hex(), "->", bytes(sr.reply).hex())
                        conn.sendall(bytes(sr.reply))
                        # A meter's invocation counter goes up with every ciphered APDU
                        # (gurux-dlms leaves it where it is).
                        if meter.settings.cipher is not None:
                            meter.settings.cipher.invocationCounter += 1
                        sr.reply = None
                    if not sr.isStreaming():
                        break
        log("connection closed")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--framing", choices=["hdlc", "wrapper"], default="wrapper")
    ap.add_argument("--auth", choices=["lls", "gmac"], default="lls")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--password", default="12345678")
    ap.add_argument("--system-title", default="4752584D45544552")
    ap.add_argument("--block-key", default="000102030405060708090A0B0C0D0E0F")
    ap.add_argument("--auth-key", default="D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF")
    ap.add_argument("--max-pdu", type=int, default=512)
    args = ap.parse_args()
    serve(Meter(args), args.port)


if __name__ == "__main__":
    main()
