#!/usr/bin/env python3
# How long a WebSocket replay (`subscribe conversation:ID`, `after` null) of the oldest and the
# newest conversation of a queue takes once the queue has served N more customers, each with
# 2 KB of metadata, joined, picked and ended over HTTP (BENCHMARKS.md, "A conversation's replay").
# Standard library only; the WebSocket client is the few lines below.
# usage: scripts/replay-bench.py JONO_BINARY DATA_DIR N [--reuse]   (--reuse: DATA_DIR's history)
import sys, os, json, time, socket, base64, subprocess, http.client, re, statistics
BIN, DATA, N = sys.argv[1], sys.argv[2], int(sys.argv[3]); reuse = '--reuse' in sys.argv
if not reuse:
    subprocess.run(['rm','-rf',DATA]); os.makedirs(DATA)
p = subprocess.Popen([BIN,'serve','--data',DATA,'--listen','127.0.0.1:0','--rate-limits','off'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
port=None
for line in p.stdout:
    m = re.search(r'127\.0\.0\.1:(\d+)', line)
    if m: port=int(m.group(1)); break
def req(method, path, body=None, token=None):
    c = http.client.HTTPConnection('127.0.0.1', port)
    h = {'content-type':'application/json'}
    if token: h['authorization']='Bearer '+token
    c.request(method, path, json.dumps(body) if body is not None else None, h)
    r = c.getresponse(); t = r.read(); c.close()
    return r.status, (json.loads(t) if t else None)
for _ in range(100):
    try:
        if req('GET','/readyz')[0]==200: break
    except Exception: pass
    time.sleep(0.1)
state_file = DATA + '/bench.json'
if not reuse:
    s,b = req('POST','/v1/signup',{"organization":"Acme","name":"Olivia","email":"o@example.com","password":"correct horse battery"})
    tok=b['token']; org=b['organization_id']; agent=b['agent_id']
    s,b = req('POST',f'/v1/orgs/{org}/queues',{"name":"Support"},tok); q=b['queue_id']
    req('POST',f'/v1/queues/{q}/handlers',{"agent_id":agent},tok); req('POST',f'/v1/queues/{q}/open',{},tok)
    ids=[]
    t0=time.time()
    for i in range(N+1):
        s,b=req('POST',f'/v1/queues/{q}/join',{"metadata":{"name":"Customer %d"%i,"note":"x"*2000}})
        if "conversation_id" not in b: print(s,b,file=sys.stderr); sys.exit(1)
        c=b["conversation_id"]; ids.append(c)
        s,_=req('POST',f'/v1/queues/{q}/pick',{},tok)
        s,_=req('POST',f'/v1/conversations/{c}/end',{},tok)
    json.dump({"token":tok,"ids":ids},open(state_file,'w'))
    print("history made in %.1f s"%(time.time()-t0), file=sys.stderr)
st=json.load(open(state_file)); tok=st['token']; ids=st['ids']
def ws_replay(cid):
    s=socket.create_connection(('127.0.0.1',port)); key=base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET /v1/ws?token={tok} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    buf=b''
    while b'\r\n\r\n' not in buf: buf+=s.recv(4096)
    buf=buf.split(b'\r\n\r\n',1)[1]
    payload=json.dumps({"type":"subscribe","topic":f"conversation:{cid}","after":None}).encode()
    mask=os.urandom(4); hdr=bytes([0x81, 0x80|126])+len(payload).to_bytes(2,'big') if len(payload)>=126 else bytes([0x81,0x80|len(payload)])
    t0=time.perf_counter()
    s.sendall(hdr+mask+bytes(b^mask[i%4] for i,b in enumerate(payload)))
    frames=0
    while True:
        while len(buf)<2: buf+=s.recv(65536)
        ln=buf[1]&0x7f; off=2
        if ln==126:
            while len(buf)<4: buf+=s.recv(65536)
            ln=int.from_bytes(buf[2:4],'big'); off=4
        elif ln==127:
            while len(buf)<10: buf+=s.recv(65536)
            ln=int.from_bytes(buf[2:10],'big'); off=10
        while len(buf)<off+ln: buf+=s.recv(65536)
        f=json.loads(buf[off:off+ln]); buf=buf[off+ln:]; frames+=1
        if f.get('type')=='subscribed': break
    dt=time.perf_counter()-t0; s.close(); return dt, frames
for label, cid in [("oldest", ids[0]), ("newest", ids[-1])]:
    ts=[ws_replay(cid)[0]*1000 for _ in range(30)]
    print(f"{label}: replay p50 {statistics.median(ts):.2f} ms, max {max(ts):.2f} ms (frames {ws_replay(cid)[1]})")
p.terminate(); p.wait()
