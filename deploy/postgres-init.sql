CREATE DATABASE dagster OWNER dialer;
