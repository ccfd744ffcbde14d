#!/usr/bin/python3
"""A Twisted AMP peer for the device test (interop-tests/test_devices.py).

    sensor_peer.py BROKER NAME EVENTS

Connects to amp-broker at the endpoint BROKER, subscribes to sensor.>,
prints "subscribed", then waits for EVENTS readings from the sensor NAME,
calls its ReadSensor command through the broker with channel 2 and with
channel 9 (which the device refuses), and prints one JSON line for each
event, answer and error, typed by Twisted's own argument parsers. Exits 0
once all of that is printed, 1 on anything unexpected.
"""
import json
import sys

from twisted.internet import defer, endpoints, reactor
from twisted.protocols import amp


class Subscribe(amp.Command):
    commandName = b"amp.Subscribe"
    arguments = [(b"pattern", amp.Unicode())]


class NoSuchChannel(Exception):
    pass


class ReadSensor(amp.Command):
    commandName = b"ReadSensor"
    arguments = [(b"channel", amp.Integer(optional=True))]
    response = [(b"channel", amp.Integer()), (b"seq", amp.Integer()),
                (b"unit", amp.Unicode()), (b"value", amp.Float())]
    errors = {NoSuchChannel: b"NO_SUCH_CHANNEL"}


def emit(kind, **fields):
    print(json.dumps(dict(kind=kind, **fields)), flush=True)


class Peer(amp.AMP):
    def __init__(self, name, wanted):
        super().__init__()
        self.event_name = ("sensor.%s.reading" % name).encode()
        self.wanted = wanted
        self.events = 0
        self.enough = defer.Deferred()

    def locateResponder(self, name):
        if name != self.event_name:
            return super().locateResponder(name)

        def reading(box):
            emit("event", command=name.decode(),
                 channel=amp.Integer().fromString(box[b"channel"]),
                 seq=amp.Integer().fromString(box[b"seq"]),
                 value=amp.Float().fromString(box[b"value"]),
                 keys=sorted(k.decode() for k in box))
            self.events += 1
            if self.events == self.wanted:
                self.enough.callback(None)
            return defer.succeed(amp.AmpBox())
        return reading


@defer.inlineCallbacks
def run(endpoint, name, wanted):
    peer = Peer(name, wanted)
    yield endpoints.connectProtocol(endpoints.clientFromString(reactor, endpoint), peer)
    yield peer.callRemote(Subscribe, pattern="sensor.>")
    print("subscribed", flush=True)
    yield peer.enough
    answer = yield peer.callRemote(ReadSensor, channel=2)
    emit("answer", **answer)
    try:
        yield peer.callRemote(ReadSensor, channel=9)
        emit("unexpected", what="channel 9 was answered")
    except NoSuchChannel as e:
        emit("error", code="NO_SUCH_CHANNEL", description=str(e))


def main():
    endpoint, name, wanted = sys.argv[1], sys.argv[2], int(sys.argv[3])
    status = []

    def done(_):
        status.append(0)
        reactor.stop()

    def failed(f):
        print(f.getTraceback(), file=sys.stderr, flush=True)
        status.append(1)
        reactor.stop()

    reactor.callWhenRunning(lambda: run(endpoint, name, wanted).addCallbacks(done, failed))
    reactor.run()
    return status[0] if status else 1


if __name__ == "__main__":
    sys.exit(main())
