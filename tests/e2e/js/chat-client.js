// chat-client.js: the original test-websocket.js, driven by the environment.
//
// It connects with the official socket.io client the way the original script
// (and the original frontend) did: io(url, {auth: {token}, transports:
// ['websocket', 'polling']}); on connect it joins the task, then sends a
// message. Every event it receives is printed as one JSON line
// {"event": name, "data": payload} on stdout, so tests/e2e/test_js_client.py
// can assert on them.
//
// Environment:
//   URL        server base URL, e.g. http://127.0.0.1:9553 (required)
//   TOKEN      access token (sent as auth.token)
//   TASK_ID    the task to join and write to (a number)
//   NAMESPACE  '' (the default namespace, as the original frontend) or '/tasks'
//   MESSAGE    the text to send (default 'Hello from test client!')
//   TIMEOUT_MS give up after this long (default 10000)
//
// Exit status: 0 once it has received its own new_message (and the ack of its
// send_message); 2 on connect_error; 3 on an `error` event; 4 on a timeout;
// 5 on a bad environment.
'use strict';

const { io } = require('socket.io-client');

const URL = process.env.URL;
const TOKEN = process.env.TOKEN || '';
const NAMESPACE = process.env.NAMESPACE || '';
const MESSAGE = process.env.MESSAGE || 'Hello from test client!';
const TIMEOUT_MS = Number(process.env.TIMEOUT_MS || 10000);
const TASK_ID = /^\d+$/.test(process.env.TASK_ID || '') ? Number(process.env.TASK_ID) : process.env.TASK_ID;

function print(event, data) {
  process.stdout.write(JSON.stringify({ event, data: data === undefined ? null : data }) + '\n');
}

let finished = false;
let sawOwnMessage = false;
let sawSendAck = false;
function finish(code) {
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  socket.disconnect();
  // Let stdout drain before leaving.
  process.stdout.write('', () => process.exit(code));
}

if (!URL) {
  print('usage_error', { message: 'URL is required' });
  process.exit(5);
}

const socket = io(URL + NAMESPACE, {
  auth: {
    token: TOKEN,
  },
  transports: ['websocket', 'polling'],
});

const timer = setTimeout(() => {
  print('timeout', { afterMs: TIMEOUT_MS });
  finish(4);
}, TIMEOUT_MS);

socket.on('connect', () => {
  print('connect', { id: socket.id, transport: socket.io.engine.transport.name });

  // Test join task; then send the message once the server has answered the join.
  socket.emit('join_task', TASK_ID, (ack) => {
    print('join_task_ack', ack);
    socket.emit('send_message', { taskId: TASK_ID, message: MESSAGE }, (sendAck) => {
      print('send_message_ack', sendAck);
      sawSendAck = true;
      if (sawOwnMessage) finish(0);
    });
  });
});

socket.on('disconnect', (reason) => {
  print('disconnect', { reason });
});

socket.on('connect_error', (error) => {
  // An Error does not stringify: print its message and the server's data.
  print('connect_error', { message: error.message, data: error.data === undefined ? null : error.data });
  finish(2);
});

socket.on('error', (error) => {
  print('error', error);
  finish(3);
});

for (const name of ['user_joined', 'user_left', 'user_typing', 'user_stopped_typing',
  'task_updated', 'member_changed', 'task_notification', 'message_updated', 'message_deleted',
  'reaction_updated', 'read_updated', 'removed_from_task']) {
  socket.on(name, (data) => print(name, data));
}

socket.on('new_message', (data) => {
  print('new_message', data);
  if (data && data.message && data.message.message === MESSAGE) {
    sawOwnMessage = true;
    if (sawSendAck) finish(0);
  }
});
